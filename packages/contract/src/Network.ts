/**
 * Which network addresses Peel may fetch from on someone else's say-so (a reference-image URL in a
 * request, an image URL in an upstream's answer). Loopback, private, link-local, unspecified, multicast
 * and reserved addresses are refused unless a host list allows them, so a request cannot make Peel probe
 * the network it runs in. Decide on the *resolved* address: a name is only as safe as what it resolves to.
 *
 * @since 0.4.0
 */
import { BlockList, isIP } from "node:net"

/** Why an address is not public. @category model */
export type AddressKind = "unspecified" | "loopback" | "private" | "link-local" | "multicast" | "reserved"

const ranges: ReadonlyArray<readonly [AddressKind, string, number]> = [
  ["unspecified", "0.0.0.0", 8],
  ["unspecified", "::", 128],
  ["loopback", "127.0.0.0", 8],
  ["loopback", "::1", 128],
  ["private", "10.0.0.0", 8],
  ["private", "172.16.0.0", 12],
  ["private", "192.168.0.0", 16],
  ["private", "100.64.0.0", 10],
  ["private", "fc00::", 7],
  ["link-local", "169.254.0.0", 16],
  ["link-local", "fe80::", 10],
  ["multicast", "224.0.0.0", 4],
  ["multicast", "ff00::", 8],
  ["reserved", "192.0.0.0", 24],
  ["reserved", "192.0.2.0", 24],
  ["reserved", "198.18.0.0", 15],
  ["reserved", "198.51.100.0", 24],
  ["reserved", "203.0.113.0", 24],
  ["reserved", "240.0.0.0", 4],
  ["reserved", "64:ff9b::", 96],
  ["reserved", "100::", 64],
  ["reserved", "2001::", 32],
  ["reserved", "2001:db8::", 32],
  ["reserved", "2002::", 16],
  ["reserved", "fec0::", 10],
]

const lists: ReadonlyArray<readonly [AddressKind, BlockList]> = (() => {
  const byKind = new Map<AddressKind, BlockList>()
  for (const [kind, network, prefix] of ranges) {
    const list = byKind.get(kind) ?? new BlockList()
    list.addSubnet(network, prefix, isIP(network) === 4 ? "ipv4" : "ipv6")
    byKind.set(kind, list)
  }
  return [...byKind]
})()

/** `[::1]` → `::1`, `Example.COM.` → `example.com`. */
const bare = (host: string): string =>
  host
    .trim()
    .replace(/^\[|\]$/g, "")
    .replace(/\.$/, "")
    .toLowerCase()

/**
 * What kind of non-public address this is, or `undefined` for a public one (or for text that is not an
 * address). IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are judged as the IPv4 address they carry.
 *
 * @category addresses
 */
export const addressKind = (address: string): AddressKind | undefined => {
  const text = bare(address)
  const family = isIP(text)
  if (family === 0) return undefined
  const mapped = family === 6 ? /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1] : undefined
  const [checked, type] = mapped === undefined ? [text, family === 4 ? "ipv4" : "ipv6"] : [mapped, "ipv4"]
  for (const [kind, list] of lists) if (list.check(checked, type as "ipv4" | "ipv6")) return kind
  return undefined
}

/** True for an address on the public internet. @category addresses */
export const isPublicAddress = (address: string): boolean => addressKind(address) === undefined

/**
 * Hosts a pipeline allows although they are not public: each entry a host name (`images.internal`), an
 * address (`127.0.0.1`, `::1`) or a range (`10.0.0.0/8`, `fd00::/8`).
 *
 * @category model
 */
export interface AllowList {
  /** True when this host name (as written in the URL) is listed. */
  readonly allowsName: (host: string) => boolean
  /** True when this resolved address is listed or inside a listed range. */
  readonly allowsAddress: (address: string) => boolean
  readonly entries: ReadonlyArray<string>
}

/** Why an allow-list entry is not usable, or `undefined` when it is. @category addresses */
export const checkAllowEntry = (entry: string): string | undefined => {
  const slash = entry.indexOf("/")
  if (slash < 0) return bare(entry).length > 0 ? undefined : "an empty host"
  const network = bare(entry.slice(0, slash))
  const prefix = Number(entry.slice(slash + 1))
  const family = isIP(network)
  if (family === 0) return `"${entry}" is not a range: write ADDRESS/PREFIX, such as 10.0.0.0/8`
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128))
    return `"${entry}" has a prefix outside 0–${family === 4 ? 32 : 128}`
  return undefined
}

/** An allow-list from pipeline entries (names, addresses, ranges); unusable entries are ignored. @category addresses */
export const allowList = (entries: ReadonlyArray<string> = []): AllowList => {
  const names = new Set<string>()
  const addresses = new BlockList()
  for (const entry of entries) {
    if (checkAllowEntry(entry) !== undefined) continue
    const slash = entry.indexOf("/")
    if (slash >= 0) {
      const network = bare(entry.slice(0, slash))
      addresses.addSubnet(network, Number(entry.slice(slash + 1)), isIP(network) === 4 ? "ipv4" : "ipv6")
      continue
    }
    const host = bare(entry)
    const family = isIP(host)
    if (family === 0) names.add(host)
    else addresses.addAddress(host, family === 4 ? "ipv4" : "ipv6")
  }
  return {
    entries,
    allowsName: (host) => names.has(bare(host)),
    allowsAddress: (address) => {
      const text = bare(address)
      const family = isIP(text)
      return family !== 0 && addresses.check(text, family === 4 ? "ipv4" : "ipv6")
    },
  }
}
