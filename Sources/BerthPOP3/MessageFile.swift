import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A stored message read a chunk at a time, for RETR and TOP: every call blocks on the
/// disk, so the handler runs them on the blocking pool and keeps one read in flight, so a
/// large message costs a session one chunk of memory, not the whole file.
/// (swift-nio's `NonBlockingFileIO` does the same but is marked for deprecation.)
enum MessageFile {
    /// Bytes read from the file at a time.
    static let chunkSize = 64 * 1024

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Opens `path` for reading; nil if it does not exist (expunged since the listing).
    static func open(_ path: String) throws -> Int32? {
        while true {
            let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            if fd >= 0 { return fd }
            switch errno {
            case EINTR: continue
            case ENOENT: return nil
            default: throw Failure(description: "cannot open \(path): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Up to `count` bytes at `offset`; empty at the end of the file.
    static func read(_ fd: Int32, at offset: Int64, count: Int = chunkSize, allocator: ByteBufferAllocator) throws
        -> ByteBuffer
    {
        var buffer = allocator.buffer(capacity: count)
        try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
            while true {
                let n = pread(fd, raw.baseAddress, count, off_t(offset))
                if n >= 0 { return n }
                if errno == EINTR { continue }
                throw Failure(description: "cannot read a message file: \(String(cString: strerror(errno)))")
            }
        }
        return buffer
    }

    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }
}
