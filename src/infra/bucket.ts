/**
 * Videos in an S3-compatible bucket (`--out s3://bucket/prefix`): each is written under a temporary key,
 * then copied to its name with its sha256 and run id in the object's metadata, so a reader never sees
 * half a video and the bucket alone says what each object is. Credentials and region come from the
 * AWS SDK's usual environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION); an S3-compatible
 * service is reached with AWS_ENDPOINT_URL_S3 (path-style addressing then).
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type * as S3 from '@aws-sdk/client-s3';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';

type Sdk = typeof S3;
import { redactText, registerSecret } from './http.js';

export function isBucketUrl(out: string): boolean {
  return /^s3:\/\//i.test(out);
}

/** What an object's metadata says it is (S3 lowercases metadata names). */
export interface ObjectFacts {
  bytes: number;
  sha256?: string;
  modifiedMs?: number;
}

export class BucketError extends Error {}

export class Bucket {
  private constructor(
    readonly url: string,
    private readonly bucket: string,
    private readonly prefix: string,
    private readonly config: S3ClientConfig,
  ) {}

  private made: Promise<{ client: S3Client; s3: Sdk }> | undefined;

  /** The SDK and its client, loaded when the bucket is first used: a folder's commands do not pay the SDK's start-up. */
  private async sdk(): Promise<{ client: S3Client; s3: Sdk }> {
    this.made ??= import('@aws-sdk/client-s3').then((s3) => ({ client: new s3.S3Client(this.config), s3 }));
    return this.made;
  }

  private static readonly opened = new Map<string, Bucket>();

  /** The bucket an output names, one client per bucket URL for the process. */
  static shared(url: string): Bucket {
    let bucket = Bucket.opened.get(url);
    if (bucket === undefined) {
      bucket = Bucket.at(url);
      Bucket.opened.set(url, bucket);
    }
    return bucket;
  }

  /** The bucket an `s3://bucket/prefix` output names, with a client from the environment. */
  static at(url: string, env: NodeJS.ProcessEnv = process.env): Bucket {
    const match = /^s3:\/\/([^/]+)\/?(.*)$/i.exec(url);
    if (!match?.[1]) throw new BucketError(`--out ${url}: expected s3://bucket or s3://bucket/prefix`);
    if (env.AWS_SECRET_ACCESS_KEY) registerSecret(env.AWS_SECRET_ACCESS_KEY);
    // The SDK is pinned at a release that runs on Node 20; its notice that later ones will not is a plain stderr line in JSON logs.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const endpoint = env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
    const config: S3ClientConfig = {
      region: env.AWS_REGION ?? 'us-east-1',
      ...(endpoint !== undefined && { endpoint, forcePathStyle: true }),
      // Checksums only where S3 requires them: the SDK's default trailing checksum on every upload is refused by several S3-compatible services.
      requestChecksumCalculation: 'WHEN_REQUIRED',
    };
    return new Bucket(url.replace(/\/+$/, ''), match[1], match[2]!.replace(/\/+$/, ''), config);
  }

  private keyOf(rel: string): string {
    const key = rel.split(path.sep).join('/');
    return this.prefix === '' ? key : `${this.prefix}/${key}`;
  }

  private async call<T>(what: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      throw new BucketError(`${what} in ${this.url}: ${redactText(error instanceof Error ? error.message : String(error))}`, { cause: error });
    }
  }

  /** Uploads a local file as `rel`: under a temporary key first, then copied into place (metadata kept), then the temporary key removed. */
  async put(file: string, rel: string, metadata: Record<string, string>, contentType: string): Promise<ObjectFacts> {
    const { size } = await stat(file);
    const final = this.keyOf(rel);
    const temporary = this.keyOf(path.join(path.dirname(rel), `.${path.basename(rel)}.${randomBytes(4).toString('hex')}.part`));
    const { client, s3 } = await this.sdk();
    const Body = createReadStream(file);
    await this.call(`uploading ${rel}`, () =>
      client.send(new s3.PutObjectCommand({ Bucket: this.bucket, Key: temporary, Body, ContentLength: size, ContentType: contentType, Metadata: metadata })),
    );
    await this.call(`putting ${rel} in place`, () =>
      client.send(
        new s3.CopyObjectCommand({ Bucket: this.bucket, Key: final, CopySource: `${this.bucket}/${encodeURI(temporary)}`, MetadataDirective: 'COPY' }),
      ),
    );
    await this.call(`removing the upload of ${rel}`, () => client.send(new s3.DeleteObjectCommand({ Bucket: this.bucket, Key: temporary })));
    const facts = await this.head(rel);
    if (facts?.bytes !== size) throw new BucketError(`${rel} in ${this.url}: ${facts?.bytes ?? 'no'} bytes after the copy, ${size} uploaded`);
    return facts;
  }

  /** Copies `fromRel` to `toRel` (an edited row's earlier video kept aside). */
  async copy(fromRel: string, toRel: string): Promise<void> {
    const source = `${this.bucket}/${encodeURI(this.keyOf(fromRel))}`;
    const { client, s3 } = await this.sdk();
    await this.call(`keeping ${fromRel}`, () =>
      client.send(new s3.CopyObjectCommand({ Bucket: this.bucket, Key: this.keyOf(toRel), CopySource: source, MetadataDirective: 'COPY' })),
    );
  }

  /** The object's size, recorded sha256 and time, or undefined when there is none. */
  async head(rel: string): Promise<ObjectFacts | undefined> {
    const { client, s3 } = await this.sdk();
    try {
      const head = await client.send(new s3.HeadObjectCommand({ Bucket: this.bucket, Key: this.keyOf(rel) }));
      const facts: ObjectFacts = { bytes: head.ContentLength ?? 0 };
      if (head.Metadata?.sha256 !== undefined) facts.sha256 = head.Metadata.sha256;
      if (head.LastModified !== undefined) facts.modifiedMs = head.LastModified.getTime();
      return facts;
    } catch (error) {
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
      throw new BucketError(`reading ${rel} in ${this.url}: ${redactText(error instanceof Error ? error.message : String(error))}`, { cause: error });
    }
  }

  /** A small file (a report) written whole. */
  async putFile(file: string, rel: string, contentType: string): Promise<void> {
    const { size } = await stat(file);
    const { client, s3 } = await this.sdk();
    const Body = createReadStream(file);
    await this.call(`writing ${rel}`, () =>
      client.send(new s3.PutObjectCommand({ Bucket: this.bucket, Key: this.keyOf(rel), Body, ContentLength: size, ContentType: contentType })),
    );
  }

  close(): void {
    void this.made?.then(({ client }) => client.destroy());
  }
}
