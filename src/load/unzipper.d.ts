/** The part of unzipper (exceljs's own zip reader, no types of its own) clipmill uses: a zip's central directory. */
declare module 'unzipper' {
  interface CentralDirectoryEntry {
    path: string;
    type: 'File' | 'Directory';
    compressedSize: number;
    /** As the central directory declares it (zip64 sizes included). */
    uncompressedSize: number;
  }
  const unzipper: { Open: { buffer(buffer: Buffer): Promise<{ files: CentralDirectoryEntry[] }> } };
  export default unzipper;
}
