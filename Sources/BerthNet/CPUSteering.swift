#if canImport(Glibc)
import Glibc
#endif
import CBerthSystem
import NIOConcurrencyHelpers
import NIOCore

/// Serves each connection on the CPU that received it.
///
/// Every event loop is pinned to one CPU, and every listener has one socket per loop
/// (`ListenerManager.bindSockets`). A classic BPF program on the socket group
/// (SO_ATTACH_REUSEPORT_CBPF, socket(7)) hands a new connection to the socket of the loop
/// pinned to the CPU that processed its SYN: the CPU the NIC's receive queue interrupts,
/// or on loopback the client's own. The session's replies, and the client's next command,
/// then wake a thread on the CPU where the data already is, instead of sending an
/// inter-processor interrupt for every round trip (nginx's `reuseport` with
/// `worker_cpu_affinity` does the same). A connection whose CPU has no loop falls back to
/// the kernel's hash, as without a program, and so does every connection while the
/// listener is busy (`SteeringSwitch`).
public struct CPUSteering: Sendable, Equatable {
    /// The CPU each event loop is pinned to, in the order the loops' sockets are bound.
    public let cpus: [Int]

    public init(cpus: [Int]) {
        self.cpus = cpus
    }

    /// Pins each of `loops` to one of the CPUs this process may use, and returns the
    /// steering for them; nil when there is nothing to gain or it cannot be done: a single
    /// loop, a loop count that is not the CPU count (a pinned loop could not move off a CPU
    /// it shares with another), or a refused `sched_setaffinity`.
    public static func pin(_ loops: [any EventLoop]) async -> CPUSteering? {
        let cpus = allowedCPUs()
        guard loops.count > 1, loops.count == cpus.count else { return nil }
        for (loop, cpu) in zip(loops, cpus) {
            let pinned = try? await loop.submit { pinCurrentThread(to: cpu) }.get()
            guard pinned == true else {
                for loop in loops { _ = try? await loop.submit { unpinCurrentThread(cpus) }.get() }
                return nil
            }
        }
        return CPUSteering(cpus: cpus)
    }

    /// Attaches `program` to a listener's socket group (any one socket of it).
    public static func attach(_ program: [BPFInstruction], to channel: any Channel) -> EventLoopFuture<Void> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
        }
        // The call may run later, on the channel's loop: the program lives until it has.
        let instructions = UnsafeMutableBufferPointer<BPFInstruction>.allocate(capacity: program.count)
        _ = instructions.initialize(from: program)
        return provider.unsafeSetSocketOption(
            level: NIOBSDSocket.OptionLevel(rawValue: SOL_SOCKET),
            name: NIOBSDSocket.Option(rawValue: attachReuseportCBPF),
            value: BPFProgram(UnsafeBufferPointer(instructions))
        ).always { _ in instructions.deallocate() }
    }

    /// Attaches `program` to the group of the listening socket `fd`; errno on failure.
    public static func attach(_ program: [BPFInstruction], toSocket fd: CInt) -> CInt? {
        program.withUnsafeBufferPointer { instructions in
            var fprog = BPFProgram(instructions)
            let result = setsockopt(fd, SOL_SOCKET, attachReuseportCBPF, &fprog, socklen_t(MemoryLayout<BPFProgram>.size))
            return result == 0 ? nil : errno
        }
    }

    /// Every connection to the kernel's hash, as without a program.
    public static let hashProgram = [BPFInstruction(code: returnConstant, k: UInt32.max)]

    /// `ld cpu; (jeq #cpu[i] → ret #i)…; ret #out-of-range`: the kernel uses the socket at
    /// the returned index of the group, and its hash when the index is out of range.
    public var program: [BPFInstruction] {
        var program = [BPFInstruction(code: Self.loadWordAbsolute, k: UInt32(bitPattern: Self.ancillaryCPU))]
        for (index, cpu) in cpus.enumerated() {
            program.append(BPFInstruction(code: Self.jumpIfEqual, jt: 0, jf: 1, k: UInt32(cpu)))
            program.append(BPFInstruction(code: Self.returnConstant, k: UInt32(index)))
        }
        program.append(BPFInstruction(code: Self.returnConstant, k: UInt32.max))
        return program
    }

    /// Runs `program` as the kernel's classic BPF interpreter would for a packet taken on
    /// `cpu`, for the tests: the socket index it selects, or nil for the hash fallback.
    public func socketIndex(forPacketOnCPU cpu: Int, program: [BPFInstruction]? = nil) -> Int? {
        var accumulator: UInt32 = 0
        var pc = 0
        let program = program ?? self.program
        while pc < program.count {
            let instruction = program[pc]
            switch instruction.code {
            case Self.loadWordAbsolute: accumulator = UInt32(cpu)
            case Self.jumpIfEqual: pc += Int(accumulator == instruction.k ? instruction.jt : instruction.jf)
            case Self.returnConstant: return instruction.k < cpus.count ? Int(instruction.k) : nil
            default: return nil
            }
            pc += 1
        }
        return nil
    }

    // linux/filter.h, asm-generic/socket.h
    static let loadWordAbsolute: UInt16 = 0x20  // BPF_LD | BPF_W | BPF_ABS
    static let jumpIfEqual: UInt16 = 0x15  // BPF_JMP | BPF_JEQ | BPF_K
    static let returnConstant: UInt16 = 0x06  // BPF_RET | BPF_K
    static let ancillaryCPU: Int32 = -0x1000 + 36  // SKF_AD_OFF + SKF_AD_CPU
    static let attachReuseportCBPF: CInt = 51  // SO_ATTACH_REUSEPORT_CBPF

    /// The CPUs this process may run on (sched_getaffinity), ascending.
    public static func allowedCPUs() -> [Int] {
        var cpus = [CInt](repeating: 0, count: 4_096)
        let count = cberth_allowed_cpus(&cpus, CInt(cpus.count))
        return cpus.prefix(Int(max(count, 0))).map(Int.init)
    }

    /// Pins the calling thread to `cpu`.
    static func pinCurrentThread(to cpu: Int) -> Bool {
        setCurrentThreadAffinity([cpu])
    }

    @discardableResult
    static func unpinCurrentThread(_ cpus: [Int]) -> Bool {
        setCurrentThreadAffinity(cpus)
    }

    private static func setCurrentThreadAffinity(_ cpus: [Int]) -> Bool {
        let ids = cpus.map(CInt.init)
        return cberth_set_thread_cpus(ids, CInt(ids.count)) == 0
    }
}

/// `struct sock_filter` (linux/filter.h): same fields, same order, 8 bytes.
public struct BPFInstruction: Sendable, Equatable {
    public var code: UInt16
    public var jt: UInt8 = 0
    public var jf: UInt8 = 0
    public var k: UInt32
}

/// `struct sock_fprog`: a length and a pointer, 16 bytes on 64-bit Linux. setsockopt(2)
/// copies the instructions; the pointer is not kept.
struct BPFProgram: @unchecked Sendable {
    var length: UInt16
    var instructions: UnsafePointer<BPFInstruction>?

    init(_ instructions: UnsafeBufferPointer<BPFInstruction>) {
        length = UInt16(instructions.count)
        self.instructions = instructions.baseAddress
    }
}

/// Steers one listener's connections by CPU while it has few sessions, and by the kernel's
/// hash while it has many. One client on a lone session gains most from locality, and loses
/// nothing to it. Many sessions need every loop; but their SYNs may all come in on one CPU
/// (a NIC with one receive queue, one local client process), which would put every
/// session on one loop. Hysteresis keeps a count that hovers at a threshold from
/// switching programs on every connection.
final class SteeringSwitch: Sendable {
    private let steering: CPUSteering
    private let socket: any Channel
    private let steered = NIOLockedValueBox(true)
    /// Hash above this many sessions; steer again at `steerAtOrBelow` or fewer.
    let hashAbove: Int
    let steerAtOrBelow: Int

    /// `socket` is one socket of the group, which has the steering program attached.
    init(_ steering: CPUSteering, socket: any Channel) {
        self.steering = steering
        self.socket = socket
        hashAbove = 4 * steering.cpus.count
        steerAtOrBelow = steering.cpus.count
    }

    /// Called with the listener's session count after every open and close.
    func sessionsChanged(to sessions: Int) {
        steered.withLockedValue { steered in
            let steer = steered ? sessions <= hashAbove : sessions <= steerAtOrBelow
            guard steer != steered else { return }
            steered = steer
            // Queued on the socket's loop while the lock is held, so switches run in the
            // order they were decided (a call made on the loop itself would run at once).
            let program = steer ? steering.program : CPUSteering.hashProgram
            let socket = self.socket
            socket.eventLoop.execute { _ = CPUSteering.attach(program, to: socket) }
        }
    }

    var isSteering: Bool { steered.withLockedValue { $0 } }
}
