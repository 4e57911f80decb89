/** Which addresses count as public, and what an allow-list lets through. */
import { describe, expect, it } from "vitest"
import { Network } from "../src/index.ts"

describe("Network.addressKind", () => {
  it("names every non-public kind, IPv4 and IPv6", () => {
    const cases: ReadonlyArray<readonly [string, Network.AddressKind | undefined]> = [
      ["0.0.0.0", "unspecified"],
      ["::", "unspecified"],
      ["127.0.0.1", "loopback"],
      ["127.255.0.9", "loopback"],
      ["::1", "loopback"],
      ["[::1]", "loopback"],
      ["::ffff:127.0.0.1", "loopback"],
      ["10.1.2.3", "private"],
      ["172.16.0.1", "private"],
      ["172.31.255.255", "private"],
      ["192.168.1.1", "private"],
      ["100.64.0.1", "private"],
      ["fc00::1", "private"],
      ["fd12:3456::1", "private"],
      ["::ffff:10.0.0.1", "private"],
      ["169.254.169.254", "link-local"],
      ["fe80::1", "link-local"],
      ["224.0.0.1", "multicast"],
      ["ff02::1", "multicast"],
      ["192.0.2.10", "reserved"],
      ["240.0.0.1", "reserved"],
      ["255.255.255.255", "reserved"],
      ["2001:db8::1", "reserved"],
      ["8.8.8.8", undefined],
      ["172.32.0.1", undefined],
      ["172.15.255.255", undefined],
      ["2606:4700::1111", undefined],
      ["::ffff:8.8.8.8", undefined],
      ["example.com", undefined],
    ]
    expect(cases.map(([address]) => [address, Network.addressKind(address)])).toEqual(cases)
    expect(Network.isPublicAddress("1.1.1.1")).toBe(true)
    expect(Network.isPublicAddress("127.0.0.1")).toBe(false)
  })
})

describe("Network.allowList", () => {
  it("matches names case-insensitively, addresses exactly and ranges by prefix", () => {
    const allow = Network.allowList(["Images.Internal", "127.0.0.1", "10.0.0.0/8", "fd00::/8", "::1"])
    expect(allow.allowsName("images.internal")).toBe(true)
    expect(allow.allowsName("images.internal.")).toBe(true)
    expect(allow.allowsName("other.internal")).toBe(false)
    expect(allow.allowsAddress("127.0.0.1")).toBe(true)
    expect(allow.allowsAddress("127.0.0.2")).toBe(false)
    expect(allow.allowsAddress("10.200.3.4")).toBe(true)
    expect(allow.allowsAddress("11.0.0.1")).toBe(false)
    expect(allow.allowsAddress("fd00::5")).toBe(true)
    expect(allow.allowsAddress("[::1]")).toBe(true)
    expect(allow.allowsAddress("images.internal")).toBe(false)
  })

  it("says what is wrong with an entry", () => {
    expect(Network.checkAllowEntry("10.0.0.0/8")).toBeUndefined()
    expect(Network.checkAllowEntry("host.example")).toBeUndefined()
    expect(Network.checkAllowEntry("10.0.0.0/33")).toBe('"10.0.0.0/33" has a prefix outside 0–32')
    expect(Network.checkAllowEntry("fd00::/129")).toBe('"fd00::/129" has a prefix outside 0–128')
    expect(Network.checkAllowEntry("host/8")).toBe('"host/8" is not a range: write ADDRESS/PREFIX, such as 10.0.0.0/8')
    expect(Network.checkAllowEntry(" ")).toBe("an empty host")
  })
})
