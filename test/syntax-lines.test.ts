import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { parseCsvManifest } from '../src/load/csv.js';
import { loadManifests } from '../src/load/load.js';
import { formatProblem } from '../src/load/problem.js';
import { parseYamlManifest } from '../src/load/yaml.js';
import { tempDir, write } from './helpers.js';

const yamlLines = (text: string) => parseYamlManifest(text, 'm.yaml').problems.map(formatProblem);
const csvLines = (text: string) => parseCsvManifest(Buffer.from(text), 'm.csv').problems.map(formatProblem);

test('a YAML syntax error is reported at the line of the mistake, once, with what to check', () => {
  // A field indented one space too far: YAML reads it as part of the value above; the mistake is the indented line.
  assert.deepEqual(yamlLines('rows:\n  - id: a\n    prompt: x\n     duration: 5\n  - id: b\n'), [
    'm.yaml:4: YAML syntax: this line is indented more than the line above, so it reads as part of that value: line it up with the other fields (or quote a text holding ": ")',
  ]);
  // One space too few.
  assert.deepEqual(yamlLines('rows:\n  - id: a\n    prompt: x\n   duration: 5\n'), [
    "m.yaml:4: YAML syntax: Sequence item without - indicator (check this line's indentation)",
  ]);
  // An unclosed quote: yaml gives up at the end of the file; the user looks at the line the quote opens.
  assert.deepEqual(yamlLines('rows:\n  - id: a\n    prompt: "Spring is here\n    duration: 5\n  - id: b\n    prompt: y\n'), [
    'm.yaml:3: YAML syntax: the " that opens this text is never closed',
  ]);
  assert.deepEqual(yamlLines("rows:\n  - id: a\n    prompt: 'Spring is here\n"), ["m.yaml:3: YAML syntax: the ' that opens this text is never closed"]);
  assert.deepEqual(yamlLines('rows:\n  - id: a\n    prompt: x\n    duration: 5\n  - id: "b\n'), [
    'm.yaml:5: YAML syntax: the " that opens this text is never closed',
  ]);
  // A tab as indentation: one problem on the tab's line, not three restating it.
  assert.deepEqual(yamlLines('rows:\n  - id: a\n\tprompt: x\n  - id: b\n'), ['m.yaml:3: YAML syntax: Tabs are not allowed as indentation']);
  assert.deepEqual(yamlLines('rows:\n  - id: a\n    prompt: x\n\t\tduration: 5\n'), ['m.yaml:4: YAML syntax: Tabs are not allowed as indentation']);
  // Unclosed brackets, a missing colon, ": " in a plain text.
  assert.deepEqual(yamlLines('rows:\n  - {id: a, prompt: x\n  - id: b\n'), ['m.yaml:2: YAML syntax: the { opened here is never closed with }']);
  assert.deepEqual(yamlLines('rows:\n  - id: a\n    prompt: [x, y\n    duration: 5\n  - id: b\n'), [
    'm.yaml:3: YAML syntax: the [ opened here is never closed with ]',
  ]);
  assert.deepEqual(yamlLines('rows:\n  - id: a\n    prompt x\n    duration: 5\n'), [
    'm.yaml:3: YAML syntax: Implicit keys need to be on a single line (is a ":" missing after the field name?)',
  ]);
  assert.deepEqual(yamlLines('rows:\n  - id: a\n    prompt: Note: it rains\n    duration: 5\n'), [
    'm.yaml:3: YAML syntax: Nested mappings are not allowed in compact mappings (a text holding ": " must be in quotes)',
  ]);
  // Repeated keys are not structural: every one is listed.
  assert.deepEqual(yamlLines('rows:\n  - id: a\n    id: b\n  - id: c\n    prompt: x\n    prompt: y\n'), [
    'm.yaml:3: YAML syntax: Map keys must be unique',
    'm.yaml:6: YAML syntax: Map keys must be unique',
  ]);
});

test('a YAML syntax error deep in a long file (read in chunks) keeps its own line', () => {
  const rows = Array.from({ length: 300 }, (_, i) => `  - id: r${i + 1}\n    prompt: x\n    duration: 5\n`).join('');
  const text = `rows:\n${rows}  - id: broken\n    prompt: "no end\n    duration: 5\n${rows.replaceAll('id: r', 'id: s')}`;
  assert.deepEqual(yamlLines(text), ['m.yaml:903: YAML syntax: the " that opens this text is never closed']);
});

test('an unclosed CSV quote is reported at the line it opens: at the start of a record, in a middle field, CRLF, after a sep= line', () => {
  const opened = 'CSV syntax: a quoted cell (column 1) starts here and its closing " is missing (a quote inside a cell is written "")';
  assert.deepEqual(csvLines('id,prompt,duration\na,x,5\n"b,y,5\nc,z,5\n'), [`m.csv:3: ${opened}`]);
  assert.deepEqual(csvLines('id,prompt,duration\na,x,5\nb,"y,5\nc,z,5\n'), [`m.csv:3: ${opened.replace('column 1', 'column 2')}`]);
  assert.deepEqual(csvLines('id,prompt,duration\r\na,x,5\r\nb,"y,5\r\nc,z,5\r\n'), [`m.csv:3: ${opened.replace('column 1', 'column 2')}`]);
  assert.deepEqual(csvLines('sep=;\r\nid;prompt;duration\r\na;x;5\r\nb;x;"y\r\nc;z;5\r\n'), [`m.csv:4: ${opened.replace('column 1', 'column 3')}`]);
  // The last line, with and without a final line break.
  assert.deepEqual(csvLines('id,prompt,duration\na,x,5\nb,"y,5\n'), [`m.csv:3: ${opened.replace('column 1', 'column 2')}`]);
  assert.deepEqual(csvLines('id,prompt,duration\na,x,5\nb,"y,5'), [`m.csv:3: ${opened.replace('column 1', 'column 2')}`]);
  // After a quoted cell spanning lines, and after blank lines, in a non-ASCII file.
  assert.deepEqual(csvLines('id,prompt,duration\na,"x\nmore\nmore",5\n\n\nb,"€ y,5\nc,z,5\n'), [`m.csv:7: ${opened.replace('column 1', 'column 2')}`]);
});

test('other CSV quote mistakes are at the line of the cell: a stray quote, text after a closing quote', () => {
  assert.deepEqual(csvLines('id,prompt,duration\na,x,5\nb,5" screen,5\n'), [
    'm.csv:3: CSV syntax: a " inside a cell that is not quoted (column 2): put the whole cell in quotes and write the " as ""',
  ]);
  assert.deepEqual(csvLines('id,prompt,duration\na,"x"y,5\nc,z,5\n'), [
    'm.csv:2: CSV syntax: a quoted cell (column 2) has text after its closing ": write each " inside a quoted cell as ""',
  ]);
  // The quote opened on line 2 is closed by line 3's first quote: the cell starts on line 2.
  assert.deepEqual(csvLines('id,prompt,duration\na,"x,5\nb,"y",5\nc,z,5\n'), [
    'm.csv:2: CSV syntax: a quoted cell (column 2) has text after its closing ": write each " inside a quoted cell as ""',
  ]);
});

test('as the CLI reads them: an Excel CSV (BOM, CRLF, sep=;) and a YAML file name the line of the mistake', async (t) => {
  const dir = await tempDir(t);
  const csv = await write(
    dir,
    'excel.csv',
    Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('sep=;\r\nid;prompt;duration\r\na;x;5\r\nb;"y;5\r\n')]),
  );
  const yaml = await write(dir, 'night.yaml', 'rows:\n  - id: a\n    image: x.jpg\n    prompt: "Spring\n    duration: 5\n');
  const { problems } = await loadManifests([csv, yaml], { defaults: new Map() });
  assert.deepEqual(
    problems.map((p) => `${path.basename(p.file)}:${p.line}`),
    ['excel.csv:4', 'night.yaml:4'],
  );
});
