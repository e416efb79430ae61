import assert from 'node:assert/strict';
import test from 'node:test';
import { parseYamlManifest } from '../src/load/yaml.js';
import { splitYamlRows } from '../src/load/yaml-split.js';
import { formatProblem } from '../src/load/problem.js';

/** What a reader of the manifest sees: every row's line, fields, values and field lines, and the problems. */
function reading(text: string, rowsPerChunk: number) {
  const parsed = parseYamlManifest(text, 'm.yaml', rowsPerChunk);
  return {
    problems: parsed.problems.map(formatProblem),
    defaults: [...parsed.defaults].map(([k, v]) => [k, v.value, v.line]),
    rows: parsed.rows.map((r) => [r.line, ...[...r.fields].map(([k, v]) => [k, v.value, v.line])]),
  };
}

const TRICKY: Record<string, string> = {
  'block scalars that hold item-like lines':
    'rows:\n  - id: a\n    prompt: |\n      first\n      - not an item\n\n  - id: b\n    prompt: >-\n      folded\n      text\n',
  'comments and blank lines between items, also at column 0':
    'rows:\n# a comment\n  - id: a\n    prompt: x\n\n# another\n  - {id: b, prompt: y}\n   # indented comment\n  - id: c\n    prompt: z\n',
  'defaults after the rows': 'rows:\n  - id: a\n    prompt: x\n  - id: b\n    prompt: y\ndefaults:\n  duration: 7\n',
  'items at column 0': 'defaults: {duration: 5}\nrows:\n- id: a\n  prompt: x\n- id: b\n  prompt: "quoted: - [x]"\n- id: c\n  prompt: plain\n    continued\n',
  'CRLF line ends': 'rows:\r\n  - id: a\r\n    prompt: x\r\n  - id: b\r\n    prompt: y\r\n',
  'flow mappings over several lines': 'rows:\n  - {id: a,\n     prompt: "x"}\n  - [not, a, map]\n  - id: c\n    prompt: "multi\n      line"\n',
  'an unknown top-level key between': 'rows:\n  - id: a\n    prompt: x\nextra: 1\n',
  'a syntax error in a later item': 'rows:\n  - id: a\n    prompt: x\n  - id: b\n    prompt: y\n  - id: c\n    prompt: "unclosed\n  - id: d\n    prompt: z\n',
  'a duplicate key in a later item': 'rows:\n  - id: a\n    prompt: x\n  - id: b\n    prompt: y\n    prompt: z\n',
  'no rows at all': 'defaults:\n  duration: 5\nrows:\n',
  'a stray key after the last row, indented as the rows are': 'defaults:\n  image: default.png\nrows:\n  - id: a\n    prompt: first\n  image: special.png\n',
  'a stray line between the rows and the next key': 'rows:\n  - id: a\n x: 1\ndefaults:\n  duration: 5\n',
  'a block scalar whose first line is blank': 'rows:\n  - prompt: |\n\n      text\n    duration: 5\n  - prompt: >\n  \n      b\n  - id: c\n',
  'an empty block scalar': 'rows:\n  - prompt: |\n  - id: b\n',
  'tabs and broken quotes': 'rows:\n  - id: a\n\tprompt: x\n  - id: "b\n',
};

for (const [name, text] of Object.entries(TRICKY)) {
  test(`a YAML manifest read in chunks reads as one document does: ${name}`, () => {
    const whole = reading(text, 0);
    for (const perChunk of [1, 2, 1000]) assert.deepEqual(reading(text, perChunk), whole, `${perChunk} rows per chunk`);
  });
}

test('the rows are cut into chunks at the lines items start on, and the top level keeps its line numbers', () => {
  const text = 'defaults:\n  duration: 5\nrows:\n  - id: a\n    prompt: |\n      - x\n  - id: b\n  - id: c\nextra: 1\n';
  const split = splitYamlRows(text, 2);
  assert.deepEqual(
    split?.chunks.map((c) => [c.firstLine, c.text]),
    [
      [4, '  - id: a\n    prompt: |\n      - x\n  - id: b\n'],
      [8, '  - id: c\n'],
    ],
  );
  assert.equal(split?.head, 'defaults:\n  duration: 5\nrows:\n\n\n\n\n\nextra: 1\n');
});

test('anchors, aliases, tags and inline row lists are read as one document, not in chunks', () => {
  for (const text of [
    'defaults: &d {duration: 5}\nrows:\n  - <<: *d\n    id: a\n',
    'rows:\n  - id: !!str 1\n',
    'rows: [{id: a}]\n',
    '---\nrows:\n  - id: a\n',
  ]) {
    assert.equal(splitYamlRows(text), null, text);
    assert.deepEqual(reading(text, 1), reading(text, 0), text);
  }
});

test('a syntax error in the 2,500th row is reported at its own line', () => {
  const lines = ['rows:'];
  for (let i = 0; i < 3000; i++) lines.push(`  - {id: r${i}, prompt: "p${i}"}`);
  assert.equal(splitYamlRows(`${lines.join('\n')}\n`)?.chunks.length, 30, 'a flow-style manifest is read in chunks');
  lines[2500] = '  - {id: r2499, prompt: "p2499}';
  const parsed = parseYamlManifest(`${lines.join('\n')}\n`, 'big.yaml');
  assert.equal(parsed.problems[0]?.line, 2501);
  assert.match(formatProblem(parsed.problems[0]), /^big\.yaml:2501: YAML syntax/);
});
