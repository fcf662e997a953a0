import BerthTestSupport
import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import BerthDNS

/// End to end against a real dnsmasq (Debian package dnsmasq-base) as the recursive resolver.
@Suite(.enabled(if: Dnsmasq.isInstalled, "dnsmasq is not installed at \(Dnsmasq.path): apt-get install -y dnsmasq-base"))
struct DnsmasqTests {
    @Test func resolvesEveryTypeThroughDnsmasq() async throws {
        let bigStrings = (0..<6).map { String(repeating: Character(String($0)), count: 250) }
        let dnsmasq = try await Dnsmasq.start([
            "--mx-host=example.net,mx.example.net,10",
            "--mx-host=example.net,mx2.example.net,20",
            "--mx-host=nullmx.example.net,.,0",
            "--host-record=mx.example.net,127.0.0.20,::1",
            "--host-record=mx2.example.net,127.0.0.21",
            "--cname=www.example.net,mx.example.net",
            "--txt-record=txt.example.net,v=spf1 ,-all",
            "--txt-record=big.example.net,\(bigStrings.joined(separator: ","))",
            "--local=/example.net/",
        ])
        defer { dnsmasq.stop() }
        let resolver = DNSResolver(servers: [dnsmasq.address], group: MultiThreadedEventLoopGroup.singleton, timeout: .seconds(2))

        #expect(try await resolver.mx("example.net") == .records([
            MXRecord(preference: 10, exchange: "mx.example.net"), MXRecord(preference: 20, exchange: "mx2.example.net"),
        ]))
        #expect(try await resolver.mx("nullmx.example.net") == .records([MXRecord(preference: 0, exchange: "")]))
        #expect(try await resolver.ipv4("MX.example.net.") == .records(["127.0.0.20"]))
        #expect(try await resolver.ipv6("mx.example.net") == .records(["::1"]))
        #expect(try await resolver.ipv4("www.example.net") == .records(["127.0.0.20"]))
        #expect(try await resolver.txt("txt.example.net") == .records(["v=spf1 -all"]))
        #expect(try await resolver.mx("mx.example.net") == .noRecords)
        #expect(try await resolver.ipv6("mx2.example.net") == .noRecords)
        #expect(try await resolver.ipv4("nope.example.net") == .noSuchDomain)
        // 1500 octets of TXT: over the 1232 advertised, so dnsmasq sets TC and the answer comes over TCP.
        #expect(try await resolver.txt("big.example.net") == .records([bigStrings.joined()]))
    }
}

/// A dnsmasq child process on 127.0.0.1 and a free port, serving only what it is told.
final class Dnsmasq: Sendable {
    static let path = "/usr/sbin/dnsmasq"
    static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: path) }

    let address: SocketAddress
    private let daemon: SpawnedDaemon
    private let logPath: String

    private init(address: SocketAddress, daemon: SpawnedDaemon, logPath: String) {
        self.address = address
        self.daemon = daemon
        self.logPath = logPath
    }

    /// Starts dnsmasq with `records` and waits until it answers; a few ports are tried in
    /// case another process takes the chosen one first.
    static func start(_ records: [String]) async throws -> Dnsmasq {
        let group = MultiThreadedEventLoopGroup.singleton
        var failure = "dnsmasq did not start"
        for _ in 0..<5 {
            let probe = try await DatagramBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
            let port = probe.localAddress!.port!
            try await probe.close()
            let logPath = NSTemporaryDirectory() + "berth-dnsmasq-\(getpid())-\(port).log"
            let daemon = try SpawnedDaemon(path, [
                "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file", "--no-resolv", "--no-hosts",
                "--bind-interfaces", "--listen-address=127.0.0.1", "--port=\(port)", "--log-facility=-",
            ] + records, logPath: logPath)
            let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
            let probeResolver = DNSResolver(servers: [address], group: group, timeout: .milliseconds(200), cacheEntries: 0)
            // Any answer means it is up; with no upstream it refuses names it does not serve.
            for _ in 0..<25 where daemon.isRunning {
                do {
                    _ = try await probeResolver.ipv4("ready.invalid")
                    return Dnsmasq(address: address, daemon: daemon, logPath: logPath)
                } catch DNSError.serverFailure(_) {
                    return Dnsmasq(address: address, daemon: daemon, logPath: logPath)
                } catch {
                    continue
                }
            }
            daemon.stop()
            failure = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? failure
            unlink(logPath)
        }
        throw DnsmasqFailure(output: failure)
    }

    func stop() {
        daemon.stop()
        unlink(logPath)
    }

    struct DnsmasqFailure: Error, CustomStringConvertible {
        var output: String
        var description: String { "dnsmasq did not start: \(output)" }
    }
}
