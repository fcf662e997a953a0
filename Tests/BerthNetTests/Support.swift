import BerthTestSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

enum Socket {
    static func address(_ host: String, _ port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        _ = inet_pton(AF_INET, host, &address.sin_addr)
        return address
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        precondition(fd >= 0)
        defer { close(fd) }
        var address = address("127.0.0.1", 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        precondition(bound == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// A listening socket that holds `port` until closed; returns the fd.
    /// A listening socket on `host:port`; `reusePort`: one that would share the port with
    /// any later socket of this user that sets SO_REUSEPORT too.
    static func hold(_ host: String, _ port: Int, reusePort: Bool = false) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        precondition(fd >= 0)
        var one: Int32 = 1
        if reusePort { precondition(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size)) == 0) }
        var address = address(host, port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        precondition(bound == 0, "cannot hold \(host):\(port): errno \(errno)")
        precondition(listen(fd, 8) == 0)
        return fd
    }

    /// IPv4 sockets listening on `port` (/proc/net/tcp, state 0A).
    static func listeningSockets(_ port: Int) -> Int {
        guard let table = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return -1 }
        let local = String(format: ":%04X", port)
        return table.split(separator: "\n").dropFirst().count { line in
            let fields = line.split(separator: " ")
            return fields.count > 3 && fields[1].hasSuffix(local) && fields[3] == "0A"
        }
    }

    enum Probe: Equatable {
        case refused
        case greeting(String)
        case other(String)
    }

    /// Whether `host:port` refuses connections within `seconds`: a listener being closed
    /// can still take a connection into its backlog and then reset it, so "closed" is
    /// polled for, not sampled once.
    static func eventuallyRefused(_ host: String, _ port: Int, seconds: Double = 5) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            if probe(host, port) == .refused { return true }
            if Date() > deadline { return false }
            usleep(50_000)
        }
    }

    /// Connects to `host:port` and reads what the server says first (2 s timeout).
    static func probe(_ host: String, _ port: Int) -> Probe {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        precondition(fd >= 0)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = address(host, port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if connected != 0 {
            return errno == ECONNREFUSED ? .refused : .other("connect: errno \(errno)")
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while !received.contains(0x0A) {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { return .other("read returned \(n), errno \(errno), after \(received.count) bytes") }
            received += buffer[0..<n]
        }
        return .greeting(String(decoding: received, as: UTF8.self))
    }
}
