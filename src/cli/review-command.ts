import path from 'node:path';
import type { Command } from 'commander';
import { outDirOf } from '../commands/prepare.js';
import { resolvePipeline } from '../config/pipeline.js';
import { InputError } from '../load/problem.js';
import { marksFile } from '../review/marks.js';
import { startReviewServer } from '../review/server.js';
import { EXIT } from '../report/summary.js';
import { OUT_HELP, pipelineOption, settingOption, sourcesOf } from './options.js';

const REVIEW_HELP = `
The page is the report's, with "approve" and "redo" (and a note) on each video. Marks are saved in <out>/review.json.
The next clipmill run (and its --dry-run, and estimate) makes each "redo" row again with its note appended to the
prompt: a new version of the row, within the budget; the earlier video is kept beside it. Editing the row in its
manifest instead drops its notes. It answers on 127.0.0.1 only, and only to the browser that opened the printed
link first (the link's key works once; start clipmill review again for a new one); Ctrl-C stops it.`;

export function addReviewCommand(program: Command): void {
  program
    .command('review')
    .description(
      "serve an output folder's report page on 127.0.0.1, where a person marks each video approved, or redo with a note; the next run makes only the redo rows again",
    )
    .addOption(settingOption('outDir', 'dir', OUT_HELP))
    .addOption(pipelineOption('pipeline file whose output.dir to review'))
    .option('--port <n>', 'the port on 127.0.0.1 (0: any free port)', '0')
    .addHelpText('after', REVIEW_HELP)
    .action(async (opts: Record<string, unknown>) => {
      const text = String(opts.port);
      const port = /^\d{1,5}$/.test(text) && Number(text) <= 65535 ? Number(text) : undefined;
      if (port === undefined) throw new InputError([{ file: '--port', line: 0, field: 'port', message: `"${text}": use a whole number from 0 to 65535` }]);
      const outDir = outDirOf((await resolvePipeline(sourcesOf(opts))).outputDir);
      const server = await startReviewServer(outDir, port);
      const marks = path.relative(process.cwd(), marksFile(outDir)) || marksFile(outDir);
      // The link's key works once: the browser that opens it gets a cookie, and nothing else on this machine can read the page.
      process.stdout.write(`review page at ${server.url} (open it in your browser; the link works once; marks saved in ${marks}); Ctrl-C to stop\n`);
      const signal = await new Promise<NodeJS.Signals>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      process.stderr.write(`\n${signal}: stopping the review page; the marks are saved\n`);
      await server.close();
      process.exitCode = EXIT.ok;
    });
}
