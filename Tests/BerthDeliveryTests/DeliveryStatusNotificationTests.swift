import Foundation
import Testing
@testable import BerthDelivery

@Suite struct DeliveryStatusNotificationTests {
    static let report = DeliveryStatusNotification(
        reportingMTA: "mx.example.com", queueID: "S1.1", sender: "alice@example.com", action: .failed,
        recipients: [
            .init(address: "bob@remote.example", status: "5.1.1", diagnostic: "550 5.1.1 no such user\r\nsecond line", remoteMTA: "mx.remote.example"),
            .init(address: "carol@gone.example", status: "5.1.2", diagnostic: "domain gone.example does not exist"),
        ],
        arrivalDate: Date(timeIntervalSince1970: 1_800_000_000),
        originalHeaders: Array("From: alice@example.com\nSubject: hi\n".utf8))

    @Test func multipartReportShape() throws {
        let text = String(decoding: Self.report.render(now: Date(timeIntervalSince1970: 1_800_000_100), messageID: "S1.1.dsn1@mx.example.com"), as: UTF8.self)
        #expect(text.hasPrefix("Return-Path: <>\n"), "a DSN comes from the null sender")
        #expect(!text.contains("\r"), "stored with LF line ends")
        #expect(text.contains("Content-Type: multipart/report; report-type=delivery-status;"))
        #expect(text.contains("Content-Type: message/delivery-status"))
        #expect(text.contains("Content-Type: text/rfc822-headers"))
        #expect(text.contains("Reporting-MTA: dns; mx.example.com"))
        #expect(text.contains("\nDate: Fri, 15 Jan 2027 08:01:40 +0000\n"), "RFC 5322 §3.3, in UTC")
        #expect(text.contains("\nArrival-Date: Fri, 15 Jan 2027 08:00:00 +0000\n"))
        #expect(text.contains("Final-Recipient: rfc822; bob@remote.example\nAction: failed\nStatus: 5.1.1\nRemote-MTA: dns; mx.remote.example\nDiagnostic-Code: smtp; 550 5.1.1 no such user  second line\n"))
        #expect(text.contains("Final-Recipient: rfc822; carol@gone.example\nAction: failed\nStatus: 5.1.2\nDiagnostic-Code: X-Berth; domain gone.example does not exist\n"))
        #expect(text.contains("Subject: hi\n"), "the original headers are returned")
        let boundary = try #require(text.firstMatch(of: /boundary="([^"]+)"/)?.1)
        #expect(text.components(separatedBy: "--\(boundary)\n").count == 4, "three parts")
        #expect(text.hasSuffix("--\(boundary)--\n"))
    }

    @Test func delayedWording() {
        var report = Self.report
        report.action = .delayed
        let text = String(decoding: report.render(messageID: "x@y"), as: UTF8.self)
        #expect(text.contains("Subject: Delayed Mail (still being retried)"))
        #expect(text.contains("Action: delayed"))
    }
}

@Suite struct HeaderScannerTests {
    static func scan(_ text: String, chunk: Int) -> (header: String, content: String, body: String) {
        var scanner = HeaderScanner()
        var body: [UInt8] = []
        let bytes = Array(text.utf8)
        for start in stride(from: 0, to: bytes.count, by: chunk) {
            bytes[start..<min(start + chunk, bytes.count)].withUnsafeBytes { raw in
                if let part = scanner.feed(raw) { body += part }
            }
        }
        scanner.finish()
        return (String(decoding: scanner.headerBytes, as: UTF8.self),
                String(decoding: scanner.headerBytes[scanner.contentStart...], as: UTF8.self),
                String(decoding: body, as: UTF8.self))
    }

    @Test(arguments: [1, 2, 3, 7, 64, 4096])
    func findsReturnPathHeaderAndBody(chunk: Int) {
        let message = "Return-Path: <a@example.com>\nReceived: from x\n\tby y\nSubject: s\n\nbody\n\nmore\n"
        let scanned = Self.scan(message, chunk: chunk)
        #expect(scanned.content == "Received: from x\n\tby y\nSubject: s\n")
        #expect(scanned.body == "body\n\nmore\n")
    }

    @Test func noReturnPathNoBody() {
        let scanned = Self.scan("Subject: only headers\n", chunk: 5)
        #expect(scanned.content == "Subject: only headers\n")
        #expect(scanned.body.isEmpty)
    }

    @Test func crlfBlankLine() {
        let scanned = Self.scan("Return-Path: <>\r\nSubject: s\r\n\r\nbody\r\n", chunk: 3)
        #expect(scanned.content == "Subject: s\r\n")
        #expect(scanned.body == "body\r\n")
    }
}
