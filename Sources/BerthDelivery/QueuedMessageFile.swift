import BerthDKIM
import BerthNet
import Foundation
import NIOCore
import NIOPosix

/// A queue file made ready to send: where its content starts (the `Return-Path:` the
/// spool wrote for local delivery is left out: RFC 5321 §4.4, only final delivery adds
/// it) and the DKIM-Signature fields to put first. Small messages are read once and
/// kept; large ones are read twice in chunks (hash, then send), so memory stays bounded.
struct QueuedMessageFile: Sendable {
    static let chunkSize = 64 * 1024
    /// Messages up to this size are kept in memory between the passes.
    static let keepInMemory = 256 * 1024
    /// RFC 5322 sets no limit on a header section; 1 MiB is far beyond real mail.
    static let maxHeaderBytes = 1 << 20

    let path: String
    let size: Int
    /// Byte offset of the first header after `Return-Path:`.
    let contentOffset: Int
    /// Whole file when small.
    let bytes: [UInt8]?
    /// "DKIM-Signature: …\r\n" fields (CRLF), possibly empty.
    let signatures: String
    /// Any byte above 127 in the content (BODY=8BITMIME, RFC 6152).
    let eightBit: Bool
    /// Line ends in the file (each one is sent as CRLF).
    let lineFeeds: Int

    /// Reads `path` and signs it with `keys` as `domain` (no keys: no signature).
    static func prepare(
        path: String, domain: String?, keys: [DKIMKey], threadPool: NIOThreadPool
    ) async throws -> QueuedMessageFile {
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
        var scanner = HeaderScanner()
        var hasher = DKIMBodyHasher()
        var kept: [UInt8] = []
        let keep = size <= Self.keepInMemory
        if keep { kept.reserveCapacity(size) }
        var eightBit = false
        var lineFeeds = 0
        func consume(_ raw: UnsafeRawBufferPointer) {
            if !eightBit { eightBit = raw.contains { $0 >= 0x80 } }
            for byte in raw where byte == UInt8(ascii: "\n") { lineFeeds += 1 }
            if let body = scanner.feed(raw), !keys.isEmpty { hasher.update(body) }
        }
        if keep {
            // A small file the spool just wrote is in the page cache: read it here rather
            // than pay two thread hops.
            kept = try Self.readWhole(path, size: size)
            kept.withUnsafeBytes { consume($0) }
        } else {
            try await Self.forEachChunk(of: path, from: 0, size: size, threadPool: threadPool) { chunk in
                chunk.withUnsafeReadableBytes { consume($0) }
            }
        }
        scanner.finish()
        guard scanner.headerBytes.count <= Self.maxHeaderBytes else {
            throw SMTPClientError("header section of \(path) exceeds \(Self.maxHeaderBytes) bytes")
        }
        var signatures = ""
        if let domain, !keys.isEmpty {
            let digest = hasher.finalize()
            let header = scanner.headerBytes[scanner.contentStart...]
            for key in keys {
                signatures += try DKIMSigner.signatureHeader(domain: domain, key: key, headerBlock: header, bodyHash: digest)
            }
        }
        return QueuedMessageFile(
            path: path, size: Int(size), contentOffset: scanner.contentStart, bytes: keep ? kept : nil,
            signatures: signatures, eightBit: eightBit, lineFeeds: lineFeeds)
    }

    /// Bytes on the wire for `SIZE=` (RFC 1870): the content with every LF sent as CRLF
    /// (the stored Return-Path line is not sent, so it slightly over-counts), and the
    /// signatures.
    var estimatedWireSize: Int { size - contentOffset + lineFeeds + signatures.utf8.count }

    /// Sends the content as DATA (after `354`), each chunk written before the next is read.
    func send(over connection: SMTPClientConnection, threadPool: NIOThreadPool) async throws {
        var stuffer = DotStuffer()
        let allocator = connection.channel.allocator
        var first = allocator.buffer(capacity: signatures.utf8.count)
        first.writeString(signatures)
        if let bytes {
            var out = allocator.buffer(capacity: bytes.count + bytes.count / 20 + 8)
            out.writeBuffer(&first)
            bytes.withUnsafeBytes { raw in
                stuffer.encode(UnsafeRawBufferPointer(rebasing: raw[contentOffset...]), into: &out)
            }
            stuffer.finish(into: &out)
            try await connection.writeData(out)
            return
        }
        try await connection.writeData(first)
        try await Self.forEachChunk(of: path, from: contentOffset, size: size, threadPool: threadPool) { chunk in
            var out = allocator.buffer(capacity: chunk.readableBytes + chunk.readableBytes / 20 + 8)
            chunk.withUnsafeReadableBytes { stuffer.encode($0, into: &out) }
            try await connection.writeData(out)
        }
        var end = allocator.buffer(capacity: 5)
        stuffer.finish(into: &end)
        try await connection.writeData(end)
    }
}

extension QueuedMessageFile {
    static func readWhole(_ path: String, size: Int) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SMTPClientError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, size - done, off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            done += n
        }
        if done < size { bytes.removeLast(size - done) }
        return bytes
    }

    /// Reads `path` from `offset` to `size` in chunks, one at a time, on the thread pool
    /// (a read of a cold file may block).
    static func forEachChunk(
        of path: String, from offset: Int, size: Int, threadPool: NIOThreadPool, _ body: (ByteBuffer) async throws -> Void
    ) async throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SMTPClientError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var position = offset
        while position < size {
            let start = position
            let length = min(chunkSize, size - position)
            let chunk = try await threadPool.runIfActive { () throws -> ByteBuffer in
                var buffer = ByteBufferAllocator().buffer(capacity: length)
                var failure: Int32 = 0
                buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { raw in
                    let n = pread(fd, raw.baseAddress, length, off_t(start))
                    if n < 0 { failure = errno }
                    return max(n, 0)
                }
                guard failure == 0 else { throw SMTPClientError("cannot read \(path): \(String(cString: strerror(failure)))") }
                return buffer
            }
            guard chunk.readableBytes > 0 else { break }
            position += chunk.readableBytes
            try await body(chunk)
        }
    }
}

/// Finds, across chunks, where the stored `Return-Path:` field ends and where the header
/// section ends; collects the header bytes (for DKIM) and hands back the body bytes.
struct HeaderScanner {
    private(set) var headerBytes: [UInt8] = []
    /// Offset in `headerBytes` (and in the file) of the first field after `Return-Path:`.
    private(set) var contentStart = 0
    private var inBody = false
    private var overflow = false

    /// Feeds the next chunk; returns the part of it that belongs to the body.
    mutating func feed(_ chunk: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        if inBody { return chunk }
        guard !overflow else { return nil }
        let before = headerBytes.count
        headerBytes.append(contentsOf: chunk)
        // Look for the blank line from just before this chunk (a "\n\n" may straddle).
        var index = max(before - 2, 0)
        while index < headerBytes.count {
            if headerBytes[index] == UInt8(ascii: "\n") {
                let next = index + 1
                if next < headerBytes.count, headerBytes[next] == UInt8(ascii: "\n")
                    || (next + 1 < headerBytes.count && headerBytes[next] == UInt8(ascii: "\r") && headerBytes[next + 1] == UInt8(ascii: "\n"))
                {
                    let bodyStart = headerBytes[next] == UInt8(ascii: "\n") ? next + 1 : next + 2
                    let bodyInChunk = bodyStart - before
                    headerBytes.removeSubrange((index + 1)...)
                    finishReturnPath()
                    inBody = true
                    return UnsafeRawBufferPointer(rebasing: chunk[max(bodyInChunk, 0)...])
                }
            }
            index += 1
        }
        if headerBytes.count > QueuedMessageFile.maxHeaderBytes { overflow = true }
        return nil
    }

    /// End of file: a message with no body is all header.
    mutating func finish() {
        if !inBody {
            finishReturnPath()
            inBody = true
        }
    }

    /// The first field is `Return-Path:` (written by the spool); it ends at the first LF
    /// not followed by folding whitespace.
    private mutating func finishReturnPath() {
        let prefix = Array("return-path:".utf8)
        guard headerBytes.count >= prefix.count,
              zip(headerBytes.prefix(prefix.count), prefix).allSatisfy({ ($0 | 0x20) == ($1 | 0x20) })
        else { return }
        var index = 0
        while let lf = headerBytes[index...].firstIndex(of: UInt8(ascii: "\n")) {
            index = lf + 1
            guard index < headerBytes.count, headerBytes[index] == UInt8(ascii: " ") || headerBytes[index] == UInt8(ascii: "\t")
            else { break }
        }
        contentStart = index
    }
}
