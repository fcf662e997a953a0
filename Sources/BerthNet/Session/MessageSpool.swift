import BerthCore
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// A message body on its way to disk while it arrives, so that a 24 MiB message costs a
/// session a few KiB of memory, not 24 MiB. Lines come in with SMTP's CRLF and are kept
/// with LF (the Maildir convention). Up to `memoryLimit` bytes stay in memory; past that
/// they go to a spool file in chunks, one write in flight at a time, on the thread pool.
/// While a chunk is being written and the next one is full, `isBackedUp` tells the session
/// to stop reading. Event-loop bound: every call comes from the session's loop.
public final class MessageSpool {
    public static let memoryLimit = 32 * 1024

    private let directory: String
    private let name: String
    private let eventLoop: any EventLoop
    private let pool: NIOThreadPool
    private var buffer: [UInt8] = []
    private var fd: Int32 = -1
    /// The spool file; it exists once `fd` is open.
    private var path: String { "\(directory)/\(name)" }
    private var writing: EventLoopFuture<Void>?
    private var failure: (any Error)?
    private var discarded = false
    /// Called on the event loop when a chunk write ends (the session may read again).
    public var onWritten: (() -> Void)?
    public private(set) var size = 0
    /// Whether a NUL octet ends the body (`sawNUL`) instead of being kept.
    private let refusesNUL: Bool
    /// A NUL octet arrived while `refusesNUL`: the body was discarded at once (nothing more
    /// is kept or written) and the caller refuses the message.
    public private(set) var sawNUL = false

    /// `refusesNUL`: an IMAP APPEND literal may not hold NUL (RFC 3501 §4.3, §9 `CHAR8`).
    /// Each piece is checked here as it arrives (one memchr while it is in cache), never
    /// by reading the spooled message back, and after a NUL nothing more is written.
    public init(
        directory: String, name: String, prefix: [UInt8], eventLoop: any EventLoop, pool: NIOThreadPool = .singleton,
        refusesNUL: Bool = false
    ) {
        self.directory = directory
        self.name = name
        self.eventLoop = eventLoop
        self.pool = pool
        self.refusesNUL = refusesNUL
        buffer.reserveCapacity(4096)
        prefix.withUnsafeBytes { appendConvertingLineEnds($0) }
    }

    public var isBackedUp: Bool { writing != nil && buffer.count >= Self.memoryLimit }

    /// Appends CRLF-terminated lines (the framer guarantees no bare CR or LF).
    public func append(_ lines: ByteBuffer) {
        guard !discarded else { return }
        let nul = lines.withUnsafeReadableBytes { bytes in
            if refusesNUL, let base = bytes.baseAddress, memchr(base, 0, bytes.count) != nil { return true }
            appendConvertingLineEnds(bytes)
            return false
        }
        if nul {
            sawNUL = true
            discard()
            return
        }
        if buffer.count >= Self.memoryLimit && writing == nil { writeChunk() }
    }

    private func appendConvertingLineEnds(_ bytes: UnsafeRawBufferPointer) {
        LineEnds.appendToLF(bytes, to: &buffer)
        size = totalWritten + buffer.count
    }

    private var totalWritten = 0

    private func writeChunk() {
        let chunk = buffer
        buffer.removeAll(keepingCapacity: true)
        totalWritten += chunk.count
        let directory = self.directory, name = self.name
        let openFD = fd
        let write = pool.runIfActive(eventLoop: eventLoop) { () throws -> Int32 in
            var fd = openFD
            if fd < 0 {
                fd = open("\(directory)/\(name)", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                guard fd >= 0 else { throw SpoolError("cannot create \(directory)/\(name): \(String(cString: strerror(errno)))") }
            }
            try Self.writeAll(fd, chunk)
            return fd
        }
        writing = write.assumeIsolated().map { fd in
            self.fd = fd
        }.flatMapErrorThrowing { error in
            self.failure = self.failure ?? error
        }.always { _ in
            self.writing = nil
            if self.discarded { self.cleanUp() } else { self.onWritten?() }
        }.nonisolated()
    }

    /// All of the body so far: in memory if it never passed the limit, else the spool file
    /// (written in full and closed; the store makes it durable and takes it over).
    public func finish() -> EventLoopFuture<MessageBody> {
        if let writing { return writing.assumeIsolated().flatMap { self.finish() }.nonisolated() }
        if let failure { return eventLoop.makeFailedFuture(failure) }
        guard fd >= 0 else {
            return eventLoop.makeSucceededFuture(.bytes(buffer))
        }
        let rest = buffer, fd = self.fd, size = self.size, path = self.path
        buffer = []
        self.fd = -1
        return pool.runIfActive(eventLoop: eventLoop) { () throws -> MessageBody in
            defer { close(fd) }
            do {
                try Self.writeAll(fd, rest)
            } catch {
                unlink(path)
                throw error
            }
            return .file(path: path, size: size)
        }
    }

    /// The message was refused: nothing of it stays on disk.
    public func discard() {
        discarded = true
        buffer = []
        if writing == nil { cleanUp() }
    }

    private func cleanUp() {
        guard fd >= 0 else { return }
        let fd = self.fd, path = self.path
        self.fd = -1
        pool.submit { _ in
            close(fd)
            unlink(path)
        }
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        if let failure = FileDescriptorIO.writeAll(fd, bytes) {
            throw SpoolError("cannot write the spool file: \(String(cString: strerror(failure)))")
        }
    }
}

public struct SpoolError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
