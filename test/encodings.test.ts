import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { decodeSpreadsheetText } from '../src/load/csv.js';
import { loadManifests } from '../src/load/load.js';
import { buildKlingInput } from '../src/model/kling-v3.js';
import { workspace, write } from './helpers.js';

const noDefaults = { defaults: new Map() };

/**
 * Every printable Windows-1252 character in 0x80–0x9F, byte → Unicode, from the code page's own table
 * (written out by hand so the test does not check the codec against itself). 0x81, 0x8D, 0x8F, 0x90
 * and 0x9D are undefined in Windows-1252 and are left out.
 */
const CP1252_80_9F: [number, string][] = [
  [0x80, '\u20ac'], // €
  [0x82, '\u201a'], // ‚
  [0x83, '\u0192'], // ƒ
  [0x84, '\u201e'], // „
  [0x85, '\u2026'], // …
  [0x86, '\u2020'], // †
  [0x87, '\u2021'], // ‡
  [0x88, '\u02c6'], // ˆ
  [0x89, '\u2030'], // ‰
  [0x8a, '\u0160'], // Š
  [0x8b, '\u2039'], // ‹
  [0x8c, '\u0152'], // Œ
  [0x8e, '\u017d'], // Ž
  [0x91, '\u2018'], // ‘
  [0x92, '\u2019'], // ’
  [0x93, '\u201c'], // “
  [0x94, '\u201d'], // ”
  [0x95, '\u2022'], // •
  [0x96, '\u2013'], // –
  [0x97, '\u2014'], // —
  [0x98, '\u02dc'], // ˜
  [0x99, '\u2122'], // ™
  [0x9a, '\u0161'], // š
  [0x9b, '\u203a'], // ›
  [0x9c, '\u0153'], // œ
  [0x9e, '\u017e'], // ž
  [0x9f, '\u0178'], // Ÿ
];
/** Latin-1 range, where Windows-1252 and ISO-8859-1 agree. */
const LATIN1: [number, string][] = [
  [0xe9, '\u00e9'], // é
  [0xfc, '\u00fc'], // ü
  [0xa9, '\u00a9'], // ©
];

/** Encodes ASCII text plus the tabled characters into Windows-1252 bytes, by hand. */
function cp1252(text: string): Buffer {
  const byChar = new Map([...CP1252_80_9F, ...LATIN1].map(([byte, ch]) => [ch, byte]));
  return Buffer.from(
    Array.from(text, (ch) => {
      const code = ch.codePointAt(0)!;
      if (code < 0x80) return code;
      const byte = byChar.get(ch);
      if (byte === undefined) throw new Error(`no Windows-1252 byte for ${ch}`);
      return byte;
    }),
  );
}

test('Windows-1252 CSV from Excel: every printable character in 0x80–0x9F (€ – ’ “ ”…) reaches the prompt and the request unchanged', async (t) => {
  const all = CP1252_80_9F.map(([, ch]) => ch).join('');
  assert.equal(all.length, 27);
  const promptA = `Le caf\u00e9 \u00fcber alles \u00a9 2025 \u2013 \u201cSale\u201d at \u20ac9.99, it\u2019s \u2018now\u2019\u2026`;
  const promptB = `All: ${all}`;
  const csv = `id;image;prompt;duration\r\na;images/hero-landscape.jpg;${promptA};5\r\nb;images/hero-landscape.jpg;"${promptB}";5\r\n`;
  const bytes = cp1252(csv);
  // The file really is legacy Windows-1252: one byte per character, and not valid UTF-8.
  assert.equal(bytes.length, Array.from(csv).length);
  assert.ok(bytes.includes(0x80) && bytes.includes(0x96) && bytes.includes(0x9f));
  assert.throws(() => new TextDecoder('utf-8', { fatal: true }).decode(bytes));

  // Every byte on its own, so a wrong mapping names the character.
  for (const [byte, ch] of [...CP1252_80_9F, ...LATIN1]) {
    assert.equal(decodeSpreadsheetText(Uint8Array.from([0x41, byte])), `A${ch}`, `byte 0x${byte.toString(16)}`);
  }

  const dir = await workspace(t);
  await write(dir, 'excel-legacy.csv', bytes);
  const { manifests, problems } = await loadManifests([path.join(dir, 'excel-legacy.csv')], noDefaults);
  assert.deepEqual(problems, []);
  const rows = manifests[0]!.rows;
  assert.deepEqual(
    rows.map((r) => r.request.prompt),
    [promptA, promptB],
  );
  // No C1 control characters (what a Latin-1 decode of 0x80–0x9F gives) anywhere in what would be sent.
  for (const row of rows) {
    const input = buildKlingInput(row.request, (ref) => (ref.kind === 'url' ? ref.url : `file:${ref.path}`));
    assert.equal(input.prompt, row === rows[0] ? promptA : promptB);
    assert.doesNotMatch(JSON.stringify(input), /[\u0080-\u009f]/);
  }
});

test('UTF-16 LE and BE (with BOM) and UTF-8 with BOM decode the same Windows-1252 punctuation', () => {
  const text = 'id\tprompt\r\nx\t\u201cCaf\u00e9\u201d \u2013 \u20ac5\u2122\r\n';
  const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
  const be = Buffer.from(le);
  be.swap16();
  const utf8 = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, 'utf8')]);
  assert.equal(decodeSpreadsheetText(le), text);
  assert.equal(decodeSpreadsheetText(be), text);
  assert.equal(decodeSpreadsheetText(utf8), text);
});
