import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**'] },
  js.configs.recommended,
  {
    // Plain scripts run by node as they are (e.g. in the VM): Node's globals.
    files: ['**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', fetch: 'readonly', AbortSignal: 'readonly', setTimeout: 'readonly', setInterval: 'readonly', console: 'readonly', Buffer: 'readonly', performance: 'readonly' } },
  },
  ...tseslint.configs.recommended,
  {
    // Plain scripts the VM guest runs with node (no TypeScript, so no type-aware globals).
    files: ['**/*.mjs'],
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', fetch: 'readonly', AbortSignal: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setImmediate: 'readonly' },
    },
  },
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // Arrows point one way: the planner is pure (no kernel I/O, no sync loop, no CLI) ...
    files: ['src/plan/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['**/dataplane/**', '**/sync/**', '**/cli/**', '**/trace/**'], message: 'the planner is pure: cluster state + node + config in, desired kernel state out' }] }] },
  },
  {
    // ... and the model, which every layer uses, uses none of them.
    files: ['src/model/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['**/dataplane/**', '**/sync/**', '**/cli/**', '**/plan/**', '**/trace/**', '**/cluster/**', '**/config/**', '**/observe/**'], message: 'src/model depends on nothing else in src' }] }] },
  },
);
