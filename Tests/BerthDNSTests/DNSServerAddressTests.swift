import Foundation
import NIOCore
import Testing

@testable import BerthDNS

struct DNSServerAddressTests {
    static let valid: [(String, String, Int)] = [
        ("127.0.0.1:5353", "127.0.0.1", 5353),
        ("192.0.2.1", "192.0.2.1", 53),
        ("[::1]:5353", "::1", 5353),
        ("[2001:db8::53]", "2001:db8::53", 53),
        ("::1", "::1", 53),
    ]

    @Test(arguments: valid)
    func parsesServer(_ text: String, _ ip: String, _ port: Int) throws {
        let address = try DNSResolver.parseServer(text)
        #expect(address.ipAddress == ip)
        #expect(address.port == port)
    }

    @Test(arguments: ["", "dns.example:53", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:x", "[::1", "[::1]x", "1.2.3:53", "[::1]:"])
    func refusesServer(_ text: String) {
        #expect(throws: DNSError.invalidServer(
            "DNS server \"\(text)\" is not ADDR, ADDR:PORT or [IPv6]:PORT with a numeric IP address and a port 1-65535"
        )) { try DNSResolver.parseServer(text) }
    }

    @Test func readsResolvConf() throws {
        let path = "/tmp/berth-dns-resolv-\(UInt32.random(in: 0...UInt32.max)).conf"
        let text = """
            # comment
            search example.net
            nameserver 192.0.2.53
            nameserver\t2001:db8::53
            nameserver fe80::1%eth0
            nameserver not-an-address
            ; nameserver 192.0.2.99
            options timeout:1
            nameserver 192.0.2.54
            nameserver 192.0.2.55

            """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let servers = DNSResolver.systemServers(resolvConf: path).map(DNSResolver.describe)
        #expect(servers == ["192.0.2.53:53", "[2001:db8::53]:53", "192.0.2.54:53"])
    }

    @Test func missingResolvConfMeansLocalhost() {
        #expect(DNSResolver.systemServers(resolvConf: "/nonexistent/resolv.conf").map(DNSResolver.describe) == ["127.0.0.1:53"])
    }
}
