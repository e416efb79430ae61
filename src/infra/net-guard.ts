import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/**
 * Where clipmill may send a request that a provider's answer chose (a video URL, an upload URL): public
 * addresses only, so an answer cannot point us at a loopback admin port or the cloud metadata service.
 * Hosts the user configured (a simulator, a proxy on loopback) are allowed by name.
 */
const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 3],
] as const)
  PRIVATE.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  PRIVATE.addSubnet(net, prefix, 'ipv6');

/** Pure: whether an IP address is loopback, private, link-local (the metadata address), reserved or multicast. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return PRIVATE.check(address, 'ipv4');
  if (family !== 6) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? PRIVATE.check(mapped[1]!, 'ipv4') : PRIVATE.check(address, 'ipv6');
}

/** Pure: why a URL a provider gave may not be fetched, or undefined. Plain http only for allowed hosts. */
export function outboundUrlProblem(url: string, allowedHosts: ReadonlySet<string>): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a URL';
  }
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  if (allowedHosts.has(host)) return undefined;
  if (parsed.protocol !== 'https:') return `${parsed.protocol}//${host} is not https`;
  if (isIP(host) && isPrivateAddress(host)) return `${host} is not a public address`;
  return undefined;
}

/** A DNS lookup for undici that refuses names resolving to non-public addresses, checked at connect time (so a rebinding name cannot slip through). */
export function guardedLookup(allowedHosts: ReadonlySet<string>) {
  return (
    hostname: string,
    options: object,
    callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      const list = addresses;
      if (!allowedHosts.has(hostname) && list.some((a) => isPrivateAddress(a.address))) {
        const refused: NodeJS.ErrnoException = new Error(`${hostname} resolves to a non-public address`);
        refused.code = 'ENOTPUBLIC';
        return callback(refused, []);
      }
      if ((options as { all?: boolean }).all) return callback(null, list);
      const first = list[0]!;
      callback(null, first.address, first.family);
    });
  };
}
