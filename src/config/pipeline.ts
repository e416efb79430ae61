// The pipeline's configuration, one shape from one schema: `schema.ts` (fields, limits, defaults),
// `flags.ts` (CLI flags checked by those fields), `env.ts` (environment overrides), `load.ts` (built once).
export { formatDurationMs, parseDurationMs } from './duration.js';
export { PROVIDERS, pipelineFields, pipelineSchema, type PipelineInput, type PipelineSettings, type ProviderName } from './schema.js';
export { checkBaseUrl, ENV_SETTINGS } from './env.js';
export { SETTING_FLAGS, type SettingOverrides } from './flags.js';
export { defaultPipeline, loadPipeline, resolvePipeline, type Pipeline, type PipelineSources } from './load.js';
export { simulatorOptionsSchema, type SimulatorSettings } from '../simulator/options.js';
