import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { SIDECAR_SUFFIX } from '../journal.js';

export interface Video {
  /** Relative to the output folder, with `/`. */
  rel: string;
  file: string;
}

export interface FolderContents {
  videos: Video[];
  /** Relative to the output folder, with `/`. */
  sidecars: string[];
}

/** The videos and sidecars in the folder's manifest folders (`<out>/<manifest>/`), relative paths with `/`. */
export async function scanOutputFolder(outDir: string): Promise<FolderContents> {
  const videos: Video[] = [];
  const sidecars: string[] = [];
  const folders = await readdir(outDir, { withFileTypes: true }).catch(() => []);
  for (const folder of folders.filter((f) => f.isDirectory() && !f.name.startsWith('.')).sort((a, b) => a.name.localeCompare(b.name))) {
    const names = (await readdir(path.join(outDir, folder.name)).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).sort();
    for (const name of names) {
      if (name.endsWith('.mp4')) videos.push({ rel: `${folder.name}/${name}`, file: path.join(outDir, folder.name, name) });
      else if (name.endsWith(SIDECAR_SUFFIX)) sidecars.push(`${folder.name}/${name}`);
    }
  }
  return { videos, sidecars };
}
