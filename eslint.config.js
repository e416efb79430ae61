// @ts-check
// Lint for clipmill: typescript-eslint's strict type-aware rules (they read the types through tsconfig.json),
// plus size limits for src/. Formatting is Prettier's job (.prettierrc.json); no rule here formats.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'out/', 'artifacts/', 'coverage/', 'tmp/'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  ...tseslint.configs.stylisticTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // Promises and async: the rules that catch real bugs. node:test's test()/describe() return promises the runner awaits itself.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      // A switch over a union must name every member (a new row state or event kind cannot slip through a switch).
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true, requireDefaultForNonUnion: false }],
      // verbatimModuleSyntax already requires `import type`; these add the autofix and keep one style (inline `type`, as the code writes it).
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-import-type-side-effects': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],

      // Numbers in messages (`${ms} ms`, `${count} rows`) are the code's normal idiom; undefined, objects and unknown stay errors.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        {
          allowNumber: true,
          allow: [
            { from: 'lib', name: ['Error', 'URL', 'URLSearchParams'] },
            { from: 'package', package: 'url', name: ['URL', 'URLSearchParams'] },
          ],
        },
      ],
      // tsconfig has noUncheckedIndexedAccess: `xs[i]!` after a length or has() check is the deliberate, visible opt-out.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // `.catch(() => {})` on best-effort cleanup and `() => {}` no-op callbacks are deliberate; empty methods and functions stay errors.
      '@typescript-eslint/no-empty-function': ['error', { allow: ['arrowFunctions'] }],
      // `() => resolve()` shorthands and `return callback(err)` early exits in void functions are clear; a void value used as a value stays an error.
      '@typescript-eslint/no-confusing-void-expression': [
        'error',
        { ignoreArrowShorthand: true, ignoreVoidOperator: true, ignoreVoidReturningFunctions: true },
      ],
      // `env.X?.trim() || fallback` means "empty is unset" on purpose; `??` would keep the empty string. Objects and booleans still checked.
      '@typescript-eslint/prefer-nullish-coalescing': ['error', { ignorePrimitives: { string: true, number: true } }],
    },
  },
  {
    // Size limits (issue 12): a file a reader can hold, a function that fits a screen. Blank lines and comments do not count.
    files: ['src/**/*.ts'],
    rules: {
      'max-lines': ['error', { max: 300, skipBlankLines: true, skipComments: true }],
      'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true, IIFEs: true }],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Tests read results defensively (`result.report?.rows[0]?.error ?? ''`) after asserts that already narrowed them; harmless there.
      '@typescript-eslint/no-unnecessary-condition': 'off',
    },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
);
