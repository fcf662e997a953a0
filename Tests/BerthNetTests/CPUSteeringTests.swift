import Foundation
import NIOEmbedded
import Testing
@testable import BerthNet

#if canImport(Glibc)
import Glibc
#endif

@Suite("CPU steering: a connection is served by the loop pinned to the CPU that received it")
struct CPUSteeringTests {
    @Test("The program selects the socket of the packet's CPU, and the hash for any other CPU",
          arguments: [
              // (pinned CPUs, packet's CPU, socket index; nil: the kernel's hash)
              ([0, 1], 0, 0), ([0, 1], 1, 1), ([0, 1], 2, nil),
              ([2, 5, 7], 5, 1), ([2, 5, 7], 7, 2), ([2, 5, 7], 0, nil), ([2, 5, 7], 3, nil),
              ([3, 64], 64, 1), ([3, 64], 4_095, nil),
          ] as [([Int], Int, Int?)])
    func selection(cpus: [Int], packetCPU: Int, expected: Int?) {
        #expect(CPUSteering(cpus: cpus).socketIndex(forPacketOnCPU: packetCPU) == expected)
    }

    @Test("A busy listener hashes; it steers again once it is nearly idle")
    func switchesWithLoad() {
        let socket = EmbeddedChannel()
        let steeringSwitch = SteeringSwitch(CPUSteering(cpus: [0, 1]), socket: socket)
        #expect(steeringSwitch.hashAbove == 8 && steeringSwitch.steerAtOrBelow == 2)
        var seen: [Bool] = []
        for sessions in [1, 5, 8, 9, 20, 8, 3, 2, 1, 8, 9] {
            steeringSwitch.sessionsChanged(to: sessions)
            seen.append(steeringSwitch.isSteering)
        }
        #expect(seen == [true, true, true, false, false, false, false, true, true, true, false])
        #expect(CPUSteering(cpus: [0, 1]).socketIndex(forPacketOnCPU: 0, program: CPUSteering.hashProgram) == nil)
    }

    @Test("Instructions and program have the kernel's layout (struct sock_filter, struct sock_fprog)")
    func layout() {
        #expect(MemoryLayout<BPFInstruction>.size == 8)
        #expect(MemoryLayout<BPFProgram>.size == 16)
        let program = CPUSteering(cpus: [0, 1]).program
        #expect(program.count == 6)
        #expect(program.first == BPFInstruction(code: 0x20, k: 0xFFFF_F024))  // ld [SKF_AD_OFF + SKF_AD_CPU]
        #expect(program.last == BPFInstruction(code: 0x06, k: UInt32.max))  // out of range: hash
    }

    @Test("The kernel hands a loopback connection made on CPU n to the socket steered to n",
          .enabled(if: CPUSteering.allowedCPUs().count >= 2, "needs two CPUs"))
    func kernelSteersByCPU() throws {
        let cpus = CPUSteering.allowedCPUs()
        let steering = CPUSteering(cpus: cpus)
        var sockets: [CInt] = []
        defer { sockets.forEach { close($0) } }
        var port: UInt16 = 0
        for _ in cpus {
            let fd = try listeningSocket(port: port)
            sockets.append(fd)
            port = try boundPort(fd)
        }
        #expect(CPUSteering.attach(steering.program, toSocket: sockets[0]) == nil)
        for round in 0..<3 {
            for (index, cpu) in cpus.enumerated() {
                let client = try connect(port: port, onCPU: cpu)
                defer { close(client) }
                let taker = try acceptingSocket(sockets)
                #expect(taker == index, "round \(round): connection made on CPU \(cpu)")
            }
        }
    }

    // MARK: - sockets

    private func listeningSocket(port: UInt16) throws -> CInt {
        let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_NONBLOCK.rawValue), 0)
        try #require(fd >= 0)
        var one: CInt = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<CInt>.size))
        var address = loopback(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0, "bind: \(errno)")
        try #require(listen(fd, 16) == 0)
        return fd
    }

    private func boundPort(_ fd: CInt) throws -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        try #require(result == 0)
        return UInt16(bigEndian: address.sin_port)
    }

    private func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }

    /// Connects from a thread of its own pinned to `cpu`, so that the SYN is taken there
    /// (loopback processes it on the sending CPU), and the test's thread stays unpinned.
    private func connect(port: UInt16, onCPU cpu: Int) throws -> CInt {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: (fd: CInt, pinned: Bool) = (-1, false)
        let thread = Thread {
            let pinned = CPUSteering.pinCurrentThread(to: cpu)
            let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
            var address = loopback(port: port)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            result = (connected == 0 ? fd : -1, pinned)
            done.signal()
        }
        thread.start()
        done.wait()
        try #require(result.pinned, "could not pin a thread to CPU \(cpu)")
        try #require(result.fd >= 0, "connect failed")
        return result.fd
    }

    /// The index of the one listening socket with the connection waiting.
    private func acceptingSocket(_ sockets: [CInt]) throws -> Int? {
        var polls = sockets.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        try #require(poll(&polls, nfds_t(polls.count), 2_000) > 0, "no socket took the connection")
        let ready = polls.indices.filter { polls[$0].revents & Int16(POLLIN) != 0 }
        for index in ready { close(accept(sockets[index], nil, nil)) }
        return ready.count == 1 ? ready[0] : nil
    }
}
