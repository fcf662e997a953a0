#if canImport(Glibc)
import Glibc
#endif

/// Plain descriptor writes shared by the spool, the Maildir writers and the delivery journal.
public enum FileDescriptorIO {
    /// Writes every byte to `fd` — at `offset` with pwrite(2), else at the file position —
    /// going on after a short write or EINTR. nil when all is written; else the errno of the
    /// failure (EIO for a write that made no progress, which would otherwise loop forever).
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int? = nil) -> Int32? {
        var done = 0
        while done < bytes.count {
            let pointer = bytes.baseAddress! + done, count = bytes.count - done
            let n = offset.map { pwrite(fd, pointer, count, off_t($0 + done)) } ?? write(fd, pointer, count)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            if n == 0 { return EIO }
            done += n
        }
        return nil
    }

    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], at offset: Int? = nil) -> Int32? {
        bytes.withUnsafeBytes { writeAll(fd, $0, at: offset) }
    }
}
