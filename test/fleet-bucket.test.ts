import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test, { type TestContext } from 'node:test';
import S3rver from '@20minutes/s3rver';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { connectRedis, fleetKeys } from '../src/fleet/redis.js';
import type { RowState } from '../src/lifecycle/events.js';
import { envFor, fastPipeline, rowsYaml, runCli, startSimulator, workspace, write } from './helpers.js';
import { startRedis } from './redis-server.js';

/** A local S3-compatible server on a loopback port with one bucket, removed after the test. */
async function startS3(t: TestContext, bucket: string): Promise<{ endpoint: string; client: S3Client }> {
  const directory = await mkdtemp(path.join(tmpdir(), 'clipmill-s3-'));
  // The fork checks signatures more strictly than the SDK signs some requests; this server is only a test fixture.
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    allowMismatchedSignatures: true,
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  t.after(async () => {
    client.destroy();
    await server.close();
    await rm(directory, { recursive: true, force: true });
  });
  return { endpoint, client };
}

test('fleet videos in an S3 bucket: put in place under their names with sha256 and run id, checked there on the next enqueue, and the reports beside them', async (t) => {
  const redis = await startRedis(t);
  const { endpoint, client } = await startS3(t, 'videos');
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rowsYaml(4));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const fleet = ['--redis', redis.url, '--queue', 'bucket', '--pipeline', pipelineFile, '--out', 's3://videos/night1'];
  const env = { ...envFor(simulator), AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: endpoint };
  const night = async () => {
    const enqueued = await runCli(['enqueue', file, ...fleet], { env, cwd: dir });
    assert.equal(enqueued.code, 0, enqueued.stderr);
    const worker = await runCli(['worker', ...fleet, '--until-idle', '--log', 'json'], { env, cwd: dir });
    assert.equal(worker.code, 0, worker.stderr);
    return enqueued.stdout;
  };

  await night();
  const keys = (await client.send(new ListObjectsV2Command({ Bucket: 'videos', Prefix: 'night1/' }))).Contents?.map((o) => o.Key) ?? [];
  assert.deepEqual(keys.sort(), ['night1/m/r0.mp4', 'night1/m/r1.mp4', 'night1/m/r2.mp4', 'night1/m/r3.mp4'], 'no temporary key left behind');
  const redisClient = await connectRedis(redis.url);
  t.after(() => redisClient.disconnect());
  const state = JSON.parse((await redisClient.hget(fleetKeys('bucket').rows, 'm/r0'))!) as RowState;
  const head = await client.send(new HeadObjectCommand({ Bucket: 'videos', Key: 'night1/m/r0.mp4' }));
  assert.equal(head.Metadata?.sha256, state.output?.sha256);
  assert.equal(head.Metadata?.['run-id'], state.runId);
  const body = await (await client.send(new GetObjectCommand({ Bucket: 'videos', Key: 'night1/m/r0.mp4' }))).Body!.transformToByteArray();
  assert.equal(createHash('sha256').update(body).digest('hex'), state.output?.sha256, 'the object is the video that was checked');

  // Nothing left to do: the objects are as journaled, so nothing is enqueued.
  assert.match(await night(), /4 done/);
  // A video deleted from the bucket is downloaded again from the same run: never generated again.
  await client.send(new DeleteObjectCommand({ Bucket: 'videos', Key: 'night1/m/r2.mp4' }));
  assert.match(await night(), /3 done, 0 in flight re-attached, 1 to download/);
  assert.ok(await client.send(new HeadObjectCommand({ Bucket: 'videos', Key: 'night1/m/r2.mp4' })));
  assert.equal(simulator.created.length, 4);

  const report = await runCli(['report', ...fleet], { env, cwd: dir });
  assert.equal(report.code, 0, report.stderr);
  for (const name of ['report.json', 'report.html', 'ledger.csv', 'journal.jsonl'])
    assert.ok(await client.send(new HeadObjectCommand({ Bucket: 'videos', Key: `night1/${name}` })), `${name} in the bucket`);
});
