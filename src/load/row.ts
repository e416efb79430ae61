/** A manifest row: its fields, how each is read, and the Row it becomes; the parts live in ./row/. */
export { Collector } from './row/collector.js';
export { gatherNumberedColumns } from './row/columns.js';
export { FAL_VOICE_IDS_MESSAGE } from './row/elements.js';
export { DEFAULTABLE_FIELDS, readSeconds, ROW_FIELDS } from './row/fields.js';
export { deriveRowId } from './row/id.js';
export { parseRow, type ParsedRow } from './row/parse.js';
export type { ImageUse, Row } from './row/types.js';
