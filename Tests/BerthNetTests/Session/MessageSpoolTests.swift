import BerthCore
import BerthTestSupport
import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import BerthNet

struct MessageSpoolTests {
    static let group = MultiThreadedEventLoopGroup.singleton

    static func body(lines: Int) -> (crlf: String, lf: String) {
        let line = (0..<lines).map { "line \($0) " + String(repeating: "x", count: 90) }
        return (line.joined(separator: "\r\n") + "\r\n", line.joined(separator: "\n") + "\n")
    }

    /// Feeds `crlf` in pieces the way the framer hands them out, then finishes.
    static func spool(_ crlf: String, in directory: TempDirectory, name: String = "Q.1") throws -> (MessageSpool, MessageBody) {
        let loop = group.next()
        let spool = try loop.submit {
            MessageSpool(directory: directory.path, name: name, prefix: Array("Return-Path: <a@b.c>\r\n".utf8), eventLoop: loop)
        }.wait()
        // Whole CRLF lines ("\r\n" is one Character in Swift, so split on the string).
        let lines = crlf.components(separatedBy: "\r\n").dropLast().map { $0 + "\r\n" }
        for piece in stride(from: 0, to: lines.count, by: 100).map({ lines[$0..<min($0 + 100, lines.count)].joined() }) {
            try loop.submit { spool.append(ByteBuffer(string: piece)) }.wait()
        }
        let body = try loop.flatSubmit { spool.finish() }.wait()
        return (spool, body)
    }

    @Test func aSmallBodyStaysInMemoryWithLFLineEnds() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let (crlf, lf) = Self.body(lines: 10)
        let (_, body) = try Self.spool(crlf, in: directory)
        #expect(body == .bytes(Array(("Return-Path: <a@b.c>\n" + lf).utf8)))
        #expect((try FileManager.default.contentsOfDirectory(atPath: directory.path)).isEmpty)
    }

    @Test func aLargeBodyGoesToTheSpoolFileWhole() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let (crlf, lf) = Self.body(lines: 5000)  // ~500 KiB, many chunks
        let (_, body) = try Self.spool(crlf, in: directory)
        let expected = Array(("Return-Path: <a@b.c>\n" + lf).utf8)
        guard case .file(let path, let size) = body else {
            Issue.record("expected a spool file, got \(body)")
            return
        }
        #expect(size == expected.count)
        #expect(path == directory.file("Q.1"))
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: path))) == expected)
    }

    @Test func aDiscardedBodyLeavesNothing() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let loop = Self.group.next()
        let spool = try loop.submit {
            MessageSpool(directory: directory.path, name: "Q.2", prefix: [], eventLoop: loop)
        }.wait()
        let (crlf, _) = Self.body(lines: 2000)
        try loop.submit { spool.append(ByteBuffer(string: crlf)) }.wait()
        try loop.submit { spool.discard() }.wait()
        for _ in 0..<100 where !(try FileManager.default.contentsOfDirectory(atPath: directory.path)).isEmpty {
            Thread.sleep(forTimeInterval: 0.02)
        }
        #expect((try FileManager.default.contentsOfDirectory(atPath: directory.path)).isEmpty)
    }

    /// IMAP APPEND (RFC 3501 §4.3): a NUL, here after several chunks went to the spool file,
    /// ends the body: nothing stays on disk, the rest is not kept, and the caller is told.
    @Test func aNULEndsARefusingSpool() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let loop = Self.group.next()
        let spool = try loop.submit {
            MessageSpool(directory: directory.path, name: "Q.3", prefix: [], eventLoop: loop, refusesNUL: true)
        }.wait()
        let (crlf, _) = Self.body(lines: 2000)
        try loop.submit { spool.append(ByteBuffer(string: crlf)) }.wait()
        #expect(try loop.submit { spool.sawNUL }.wait() == false)
        try loop.submit {
            spool.append(ByteBuffer(bytes: Array("a NUL \u{0} here\r\n".utf8)))
            spool.append(ByteBuffer(string: crlf))
        }.wait()
        #expect(try loop.submit { spool.sawNUL && !spool.isBackedUp }.wait())
        for _ in 0..<100 where !(try FileManager.default.contentsOfDirectory(atPath: directory.path)).isEmpty {
            Thread.sleep(forTimeInterval: 0.02)
        }
        #expect((try FileManager.default.contentsOfDirectory(atPath: directory.path)).isEmpty)
    }

    /// SMTP keeps its bytes as they are: only a spool asked to refuses NUL.
    @Test func aNULIsKeptByDefault() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let loop = Self.group.next()
        let spool = try loop.submit { MessageSpool(directory: directory.path, name: "Q.4", prefix: [], eventLoop: loop) }.wait()
        try loop.submit { spool.append(ByteBuffer(bytes: Array("a\u{0}b\r\n".utf8))) }.wait()
        let body = try loop.flatSubmit { spool.finish() }.wait()
        #expect(body == .bytes([0x61, 0, 0x62, 0x0A]))
        #expect(try loop.submit { spool.sawNUL }.wait() == false)
    }
}
