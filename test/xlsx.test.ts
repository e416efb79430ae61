import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import ExcelJS from 'exceljs';
import { retryRows } from '../src/commands/retry.js';
import { runManifests } from '../src/commands/run.js';
import { defaultPipeline } from '../src/config/pipeline.js';
import { loadManifests } from '../src/load/load.js';
import { loadValidated } from '../src/load/validate.js';
import { formatProblem, sortProblems, type Problem } from '../src/load/problem.js';
import { parseXlsxManifest } from '../src/load/xlsx.js';
import { workbookSizeProblem } from '../src/load/xlsx-zip.js';
import type { Report } from '../src/report/build.js';
import { ROOT, envFor, fastPipeline, runCli, startSimulator, tempDir, workspace, write } from './helpers.js';

/**
 * Made by LibreOffice from the hand-written campaign.fods beside it (typed cells: numbers, booleans, dates, formulas),
 * converted once with:
 *   soffice --headless --convert-to xlsx --outdir test/fixtures/xlsx test/fixtures/xlsx/campaign.fods
 * (LibreOffice 7.4 from Debian's libreoffice-calc-nogui).
 */
const LIBREOFFICE_XLSX = path.join(ROOT, 'test', 'fixtures', 'xlsx', 'campaign.xlsx');
const noDefaults = { defaults: new Map() };

type Cell = ExcelJS.CellValue;

/** A workbook written by the library: each sheet a list of rows (row 1 the header); `null` rows stay blank. */
async function workbook(sheets: Record<string, (Cell[] | null)[]>): Promise<Buffer> {
  const book = new ExcelJS.Workbook();
  for (const [name, rows] of Object.entries(sheets)) {
    const sheet = book.addWorksheet(name);
    rows.forEach((cells, i) => {
      if (cells) sheet.getRow(i + 1).values = cells;
    });
  }
  return Buffer.from(await book.xlsx.writeBuffer());
}

/** Dates are wall-clock times without a zone: a test reading one runs far from UTC, so a local-time reading would show. */
function farTimeZone(t: TestContext): void {
  const before = process.env.TZ;
  process.env.TZ = 'Pacific/Kiritimati'; // UTC+14
  t.after(() => {
    if (before === undefined) delete process.env.TZ;
    else process.env.TZ = before;
  });
}

/** Problems as a user reads them (sorted by line), with the file's base name. */
const said = (problems: readonly Problem[]) => sortProblems(problems).map((p) => formatProblem({ ...p, file: path.basename(p.file) }));

const fieldsOf = (row: { fields: Map<string, { value: unknown }> } | undefined) => Object.fromEntries([...(row?.fields ?? [])].map(([k, v]) => [k, v.value]));

test('the LibreOffice-made .xlsx validates: typed cells (number, boolean, date, formulas) reach the rows, images resolve beside the file', async (t) => {
  farTimeZone(t);
  const raw = await parseXlsxManifest(await readFile(LIBREOFFICE_XLSX), 'campaign.xlsx');
  assert.deepEqual(raw.problems, []);
  assert.deepEqual(
    raw.rows.map((r) => r.line),
    [2, 3, 5],
    'the sheet row numbers, the blank row 4 skipped',
  );
  assert.deepEqual(fieldsOf(raw.rows[0]), {
    id: 'hero',
    image: '../../../manifests/images/hero-landscape.jpg',
    prompt: 'Slow dolly forward at sunrise',
    duration: 5,
    generate_audio: true,
    cfg_scale: 0.5,
    notes: '2025-03-14',
  });
  // Formulas read as their saved results: ="Slow pan across "&"the shelves" and =2+4.
  assert.equal(fieldsOf(raw.rows[1]).prompt, 'Slow pan across the shelves');
  assert.equal(fieldsOf(raw.rows[1]).duration, 6);

  const { manifests, problems, images } = await loadManifests([LIBREOFFICE_XLSX], noDefaults);
  assert.deepEqual(problems, []);
  assert.equal(manifests[0]?.name, 'campaign');
  const [hero, shelf, square] = manifests[0]?.rows ?? [];
  assert.deepEqual(
    [hero?.request.durationSeconds, hero?.request.generateAudio, hero?.request.cfgScale, shelf?.request.durationSeconds, shelf?.request.generateAudio],
    [5, true, 0.5, 6, false],
  );
  assert.equal(square?.line, 5);
  assert.ok(images.has(path.join(ROOT, 'manifests', 'images', 'hero-landscape.jpg')));
});

test('file.xlsx#Sheet picks a worksheet, named <file>-<sheet>; an unknown sheet lists the sheets there are; names still may not clash', async (t) => {
  const { manifests, problems } = await loadManifests([LIBREOFFICE_XLSX, `${LIBREOFFICE_XLSX}#Autumn 2025`], noDefaults);
  assert.deepEqual(problems, []);
  assert.deepEqual(
    manifests.map((m) => [m.name, m.rows.map((r) => `${r.id}@${r.line}`)]),
    [
      ['campaign', ['hero@2', 'shelf@3', 'square@5']],
      ['campaign-Autumn 2025', ['leaves@2']],
    ],
  );
  assert.equal(manifests[1]?.shown, `${path.relative(process.cwd(), LIBREOFFICE_XLSX)}#Autumn 2025`);
  assert.equal(manifests[1]?.rows[0]?.request.generateAudio, true);

  const unknown = await loadManifests([`${LIBREOFFICE_XLSX}#Winter`], noDefaults);
  assert.deepEqual(
    unknown.problems.map((p) => p.message),
    ['has no sheet named "Winter" (its sheets: "Spring", "Autumn 2025")'],
  );
  // The name as written names the manifest: a sheet matched ignoring case would re-key every row once the case is fixed.
  const cased = await loadManifests([`${LIBREOFFICE_XLSX}#autumn 2025`], noDefaults);
  assert.deepEqual(
    cased.problems.map((p) => p.message),
    ['no sheet "autumn 2025": did you mean "Autumn 2025"? (write the sheet\'s name exactly as the workbook has it)'],
  );

  const dir = await workspace(t);
  const book = await write(dir, 'promo.xlsx', await workbook({ Main: [['id']], EU: [['id']] }));
  await write(dir, 'promo-EU.csv', 'id,image,prompt,duration\na,images/hero-landscape.jpg,x,5\n');
  const clash = await loadManifests([path.join(dir, 'promo-EU.csv'), `${book}#EU`], noDefaults);
  assert.match(
    clash.problems.map(formatProblem).join('\n'),
    /promo\.xlsx#EU: has the same name as .*promo-EU\.csv: both would write to the output folder "promo-EU\/"/,
  );
});

test('a library-written workbook: typed cells validate as typed, every problem at the sheet row with the column name and cell', async (t) => {
  farTimeZone(t);
  const dir = await workspace(t);
  const hero = 'images/hero-landscape.jpg';
  const file = await write(
    dir,
    'book.xlsx',
    await workbook({
      Rows: [
        ['ID', 'Image', 'Prompt', 'Duration', 'Generate Audio', 'Notes'],
        ['typed', hero, 'Sunrise', 5, true, new Date(Date.UTC(2025, 2, 14, 9, 30))],
        null,
        ['too-long', hero, 'x', 20, false],
        ['broken', hero, { error: '#N/A' }, 5, false],
        ['unsaved', hero, 'x', { formula: 'B2*2' }, false], // Excel's ="" as exceljs reads it: in a calculated sheet, blank
        ['stray', hero, 'x', 5, 'maybe', null, 'left over'],
        [
          'rich',
          { text: 'the hero shot', hyperlink: 'https://cdn.example.com/hero.jpg' },
          { richText: [{ text: 'Bold ' }, { text: 'move' }] },
          { formula: '1+2', result: 3 },
          'no',
        ],
      ],
    }),
  );
  const raw = await parseXlsxManifest(await readFile(file), 'book.xlsx');
  assert.equal(fieldsOf(raw.rows[0]).notes, '2025-03-14T09:30:00', 'a date with a time, as written, no zone');
  assert.deepEqual(fieldsOf(raw.rows.find((r) => r.line === 8)), {
    id: 'rich',
    image: 'https://cdn.example.com/hero.jpg',
    prompt: 'Bold move',
    duration: 3,
    generate_audio: 'no',
    notes: undefined,
  });

  const { manifests, problems } = await loadManifests([file], noDefaults);
  assert.deepEqual(said(problems), [
    'book.xlsx:4: duration: 20 is out of range (whole seconds from 3 to 15)',
    'book.xlsx:5: prompt: C5: the cell shows the error #N/A: fix the formula or the value, or clear the cell',
    'book.xlsx:6: duration: is required (whole seconds from 3 to 15)',
    'book.xlsx:7: column G: "left over" is in a column without a header name',
    'book.xlsx:7: generate_audio: "maybe" is not a yes/no value (true or false)',
  ]);
  // A script that does not calculate leaves every formula without a result: that is said, naming the cell.
  const script = await write(
    dir,
    'script.xlsx',
    await workbook({
      Rows: [
        ['id', 'image', 'prompt', 'duration'],
        ['a', hero, 'x', { formula: '2+3' }],
      ],
    }),
  );
  assert.deepEqual(said((await loadManifests([script], noDefaults)).problems), [
    'script.xlsx:2: duration: D2: formula has no saved value; open and save the file in a spreadsheet program',
  ]);
  const typed = manifests[0]?.rows.find((r) => r.id === 'typed');
  assert.deepEqual([typed?.line, typed?.request.durationSeconds, typed?.request.generateAudio], [2, 5, true]);
  const rich = manifests[0]?.rows.find((r) => r.id === 'rich');
  assert.deepEqual(rich?.request.image, { kind: 'url', url: 'https://cdn.example.com/hero.jpg' });
});

test("numbers read as a spreadsheet shows them (15 significant digits), and a number format making an id's text is a problem naming the cell", async (t) => {
  const dir = await workspace(t);
  const book = new ExcelJS.Workbook();
  const sheet = book.addWorksheet('Rows');
  sheet.addRows([
    ['id', 'image', 'prompt', 'duration', 'cfg_scale'],
    ['sums', 'images/hero-landscape.jpg', 'x', { formula: '(0.7+0.1)*10', result: (0.7 + 0.1) * 10 }, { formula: '0.1+0.2', result: 0.1 + 0.2 }],
    [7, 'images/hero-landscape.jpg', 'x', 5, 0.5],
    [1, 'images/hero-landscape.jpg', 'x', 5, 0.5],
  ]);
  sheet.getCell('A4').numFmt = '000'; // shows 001
  sheet.getCell('E3').numFmt = '0%'; // a number column: the format changes only its look
  const file = await write(dir, 'numbers.xlsx', Buffer.from(await book.xlsx.writeBuffer()));
  const { manifests, problems } = await loadManifests([file], noDefaults);
  assert.deepEqual(said(problems), [
    'numbers.xlsx:4: id: A4: the cell shows the number 1 through the number format "000", which clipmill does not apply: format the cells as Text and type the id as it should read',
  ]);
  const rows = manifests[0]?.rows ?? [];
  assert.deepEqual(
    rows.map((r) => [r.id, r.request.durationSeconds, r.request.cfgScale]),
    [
      ['sums', 8, 0.3],
      ['7', 5, 0.5],
    ],
  );
});

test('blank rows above the header (spaces, ="" formulas) are skipped; a cell merged down from the row above is a problem naming it', async (t) => {
  const dir = await workspace(t);
  const book = new ExcelJS.Workbook();
  const sheet = book.addWorksheet('Rows');
  sheet.getCell('A1').value = { formula: '""', result: '' };
  sheet.getCell('B2').value = '   ';
  sheet.getRow(3).values = ['id', 'image', 'prompt', 'duration'];
  sheet.getRow(4).values = ['a', 'images/hero-landscape.jpg', 'one prompt for two rows', 5];
  sheet.getRow(5).values = ['b', 'images/hero-landscape.jpg', null, 5];
  sheet.mergeCells('C4:C5');
  sheet.getRow(6).values = ['c', 'images/hero-landscape.jpg', 'x', { formula: '2+3', result: 5 }];
  sheet.mergeCells('E2:F2'); // a merge across one row (a title) is one value, no problem
  const file = await write(dir, 'merged.xlsx', Buffer.from(await book.xlsx.writeBuffer()));
  const { manifests, problems } = await loadManifests([file], noDefaults);
  assert.deepEqual(said(problems), [
    'merged.xlsx:5: prompt: C5 is inside the merged cells that start at C4, whose value belongs to that row only: unmerge them and fill in each row',
  ]);
  assert.deepEqual(
    manifests[0]?.rows.map((r) => `${r.id}@${r.line}`),
    ['a@4', 'c@6'],
  );
});

test('clipmill retry finds a workbook whose own name holds .xlsx# (promo.xlsx#2.xlsx) before looking behind a #sheet', async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  const file = await write(
    dir,
    'promo.xlsx#2.xlsx',
    await workbook({
      Main: [
        ['id', 'image', 'prompt', 'duration'],
        ['a', 'images/hero-landscape.jpg', 'x', 5],
      ],
    }),
  );
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const options = { pipelineFile, outDir: path.join(dir, 'out'), env: envFor(simulator), print: () => {}, logLine: () => {} };
  assert.equal((await runManifests({ ...options, manifests: [file] })).exitCode, 0);
  const retried = await retryRows(['promo.xlsx#2/a'], options);
  assert.equal(retried.exitCode, 0, "the last run's manifest was found and read again");
  assert.equal(simulator.created.length, 1, 'a row that is done is not paid again');
});

test('a header named twice, or an empty sheet, are problems at their row', async (t) => {
  const dir = await tempDir(t);
  const twice = await write(dir, 'twice.xlsx', await workbook({ S: [null, ['id', 'Prompt', 'prompt ']] }));
  const empty = await write(dir, 'empty.xlsx', await workbook({ S: [] }));
  const { problems } = await loadManifests([twice, empty], noDefaults);
  assert.deepEqual(said(problems), [
    'empty.xlsx:1: the sheet "S" is empty: expected a header row (id, image, prompt, duration, …)',
    'twice.xlsx:2: prompt: column appears twice in the header',
  ]);
});

test('a folder takes .xlsx beside YAML and CSV, skips Excel owner files (~$) and dotfiles, and names workbooks it cannot read', async (t) => {
  const dir = await workspace(t);
  const sheet = await workbook({
    Night: [
      ['id', 'image', 'prompt', 'duration'],
      ['a', 'images/hero-landscape.jpg', 'x', 5],
    ],
  });
  await write(dir, 'promo.xlsx', sheet);
  await write(dir, '~$promo.xlsx', Buffer.from([0x0b, 0x41, 0x6e, 0x6e, 0x61])); // Excel's lock file while promo.xlsx is open
  await write(dir, '.promo.xlsx', 'hidden');
  await write(dir, 'retail.csv', 'id,image,prompt,duration\nb,images/hero-landscape.jpg,y,4\n');
  const ok = await loadManifests([dir], noDefaults);
  assert.deepEqual(ok.problems, []);
  assert.deepEqual(
    ok.manifests.map((m) => m.name),
    ['promo', 'retail'],
  );

  await write(dir, 'legacy.xls', Buffer.from([0xd0, 0xcf, 0x11, 0xe0]));
  await write(dir, 'calc.ods', 'PK');
  const refused = await loadManifests([dir], noDefaults);
  assert.deepEqual(
    refused.problems.map((p) => [path.basename(p.file), p.message]),
    [
      ['calc.ods', '.ods workbooks are not read: open it and save it as .xlsx (Excel Workbook) or CSV'],
      ['legacy.xls', '.xls workbooks are not read: open it and save it as .xlsx (Excel Workbook) or CSV'],
    ],
  );
  // --skip-invalid sets an unreadable workbook aside as it does a manifest with mistakes: the rest of the night runs.
  const skipping = await loadValidated([dir], defaultPipeline(), true);
  assert.deepEqual(
    skipping.manifests.map((m) => m.name),
    ['promo', 'retail'],
  );
  assert.deepEqual(
    skipping.skipped.map((p) => path.basename(p.file)),
    ['calc.ods', 'legacy.xls'],
  );
});

test('clipmill validate: a corrupt, a non-zip and a password-protected .xlsx, and a .numbers file, are clear errors (exit 2, no stack trace)', async (t) => {
  const dir = await tempDir(t);
  const good = await workbook({ S: [['id'], ['a']] });
  await write(dir, 'cut.xlsx', good.subarray(0, good.length >> 1));
  await write(dir, 'text.xlsx', 'id,image,prompt,duration\n');
  await write(dir, 'locked.xlsx', Buffer.concat([Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]), Buffer.alloc(504)]));
  await write(dir, 'deck.numbers', 'x');
  const result = await runCli(['validate', 'cut.xlsx', 'text.xlsx', 'locked.xlsx', 'deck.numbers'], { cwd: dir });
  assert.equal(result.code, 2);
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
  const said = `${result.stdout}${result.stderr}`;
  assert.match(said, /cut\.xlsx: cannot be read as an \.xlsx workbook \(.*\): open it and save it again as \.xlsx, or as CSV/);
  assert.match(said, /text\.xlsx: is not an \.xlsx workbook \(an \.xlsx file is a zip archive; this one is not\)/);
  assert.match(said, /locked\.xlsx: is password-protected, or an Excel 97-2003 workbook named \.xlsx/);
  assert.match(said, /deck\.numbers: \.numbers workbooks are not read: open it and save it as \.xlsx \(Excel Workbook\) or CSV/);
});

/**
 * A real workbook whose one sheet unpacks to 70 MB of identical rows (244 KB as a file): exceljs would model every
 * one of its million rows in memory. Made by loading a library-written workbook with jszip, replacing
 * xl/worksheets/sheet1.xml with 1,060,607 `<row><c t="inlineStr"><is><t>row</t></is></c><c><v>5</v></c></row>`
 * and writing it back with DEFLATE level 9.
 */
const UNPACKS_LARGE = path.join(ROOT, 'test', 'fixtures', 'xlsx', 'unpacks-large.xlsx');

test('a workbook too big to read is refused from its zip directory before it is opened, and a local .xlsx over 20 MB before it is read', async (t) => {
  const started = Date.now();
  const large = await loadManifests([UNPACKS_LARGE], noDefaults);
  assert.deepEqual(said(large.problems), [
    'unpacks-large.xlsx: its worksheets unpack to 70 MB (every sheet of a workbook is read; the most is 64 MB, about 200,000 rows of six columns): move the manifest to a workbook of its own, split the sheet, or save it as CSV',
  ]);
  assert.ok(Date.now() - started < 2000, 'refused without unpacking it');

  const dir = await tempDir(t);
  const huge = Buffer.alloc(25_000_000);
  huge.set([0x50, 0x4b, 0x03, 0x04]);
  const big = await write(dir, 'big.xlsx', huge);
  assert.deepEqual(said((await loadManifests([big], noDefaults)).problems), [
    'big.xlsx: is 25 MB, larger than 20 MB (the most an .xlsx manifest may be): remove pictures and other sheets, split the sheet, or save it as CSV',
  ]);

  // The shared strings and the whole zip have their own caps.
  const entries = (strings: number, other: number) => [
    { path: 'xl/worksheets/sheet1.xml', uncompressedSize: 30e6 },
    { path: 'xl/sharedStrings.xml', uncompressedSize: strings },
    { path: 'xl/pivotCache/pivotCacheRecords1.xml', uncompressedSize: other },
  ];
  assert.equal(workbookSizeProblem(4e6, entries(30e6, 1e6)), undefined, 'a 100,000-row manifest (30 MB of sheet, 30 MB of text) is read');
  assert.match(workbookSizeProblem(4e6, entries(80e6, 0)) ?? '', /^its text unpacks to 80 MB \(the most is 64 MB\)/);
  assert.match(workbookSizeProblem(4e6, entries(30e6, 150e6)) ?? '', /^unpacks to 210 MB \(the most is 192 MB\)/);
});

test('clipmill run on an .xlsx manifest and one of its other sheets: one playable video per row, in <file>/ and <file>-<sheet>/', async (t) => {
  const simulator = await startSimulator(t, { concurrency: 4 });
  const dir = await tempDir(t);
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');
  const quiet = { print: () => {}, logLine: () => {} };
  const result = await runManifests({
    manifests: [LIBREOFFICE_XLSX, `${LIBREOFFICE_XLSX}#Autumn 2025`],
    pipelineFile,
    outDir: out,
    env: envFor(simulator),
    ...quiet,
  });
  assert.equal(result.exitCode, 0);
  assert.deepEqual((await readdir(path.join(out, 'campaign'))).filter((f) => f.endsWith('.mp4')).sort(), ['hero.mp4', 'shelf.mp4', 'square.mp4']);
  assert.deepEqual(
    (await readdir(path.join(out, 'campaign-Autumn 2025'))).filter((f) => f.endsWith('.mp4')),
    ['leaves.mp4'],
  );
  const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as Report;
  assert.equal(report.totals.done, 4);
  const shelf = report.rows.find((r) => r.id === 'shelf');
  assert.deepEqual([shelf?.line, shelf?.duration, shelf?.generate_audio], [3, 6, false]);
  const sent = simulator.created.find((c) => (c.metadata as { clipmill_row?: string }).clipmill_row === 'hero')?.input;
  assert.deepEqual([sent?.duration, sent?.generate_audio], ['5', true]);
});
