@testable import BerthDKIM
import BerthTestSupport
import Foundation
import Testing

/// python3 with dkimpy (and pynacl, which dkimpy needs for ed25519), or nil.
let pythonWithDKIM: String? = {
    guard let python = executable("python3"),
          let result = try? BerthTestSupport.run(python, ["-c", "import dkim, dns, nacl.signing"]),
          result.status == 0
    else { return nil }
    return python
}()

/// Signed messages checked by dkimpy, an independent verifier, as a receiver would check
/// them: the message sent with CRLF, the key record served for "<s>._domainkey.<d>".
@Suite(
    "Verification by dkimpy",
    .enabled(if: pythonWithDKIM != nil, "needs python3 with dkimpy, dnspython and pynacl: pip install dkimpy dnspython pynacl")
)
struct DKIMPythonVerifierTests {
    static let verifyScript = """
        import sys, dkim
        message = open(sys.argv[1], 'rb').read()
        record = open(sys.argv[2], 'rb').read().strip()
        expected = sys.argv[3]
        def dnsfunc(name, timeout=5):
            if isinstance(name, bytes):
                name = name.decode()
            return record if name.rstrip('.') == expected else None
        print(dkim.verify(message, dnsfunc=dnsfunc))
        """

    static let bodyHashScript = """
        import sys, hashlib, re
        from dkim.canonicalization import Relaxed
        for line in open(sys.argv[1]):
            body = bytes.fromhex(line.strip())
            # As sent: LF read as CRLF, and SMTP ends a message that lacks one with CRLF.
            body = re.sub(rb'(?<!\\r)\\n', b'\\r\\n', body)
            if body and not body.endswith(b'\\r\\n'):
                body += b'\\r\\n'
            print(hashlib.sha256(Relaxed.canonicalize_body(body)).hexdigest())
        """

    /// What dkimpy says of `message` (CRLF) signed with `key` for example.com.
    func dkimpyVerifies(_ message: [UInt8], key: DKIMKey) throws -> Bool {
        let python = try #require(pythonWithDKIM)
        let directory = try TempDirectory()
        defer { directory.remove() }
        let script = try directory.write("verify.py", Self.verifyScript)
        let record = try directory.write("record.txt", key.dnsRecord)
        let messagePath = directory.file("message.eml")
        try Data(message).write(to: URL(fileURLWithPath: messagePath))
        let errors = directory.file("stderr")
        let result = try runCapturingOutput(python, [script, messagePath, record, "\(key.selector)._domainkey.example.com"], errorsPath: errors)
        let stderr = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        #expect(result.status == 0, "dkimpy failed: \(stderr)")
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "True"
    }

    /// Signs the LF-stored sample the way delivery will: header block and body split, body
    /// hashed in uneven chunks, the message then sent with CRLF behind the new field.
    func signedForSending(_ stored: [UInt8], key: DKIMKey) throws -> [UInt8] {
        let (headerBlock, bodyStart) = try DKIMMessage.split(stored)
        var hasher = DKIMBodyHasher()
        var start = bodyStart
        var size = 1
        while start < stored.endIndex {
            let end = min(stored.endIndex, start + size)
            hasher.update(stored[start..<end])
            start = end
            size = size * 3 + 1
        }
        let field = try DKIMSigner.signatureHeader(domain: "example.com", key: key, headerBlock: headerBlock, bodyHash: hasher.finalize())
        return bytes(field) + crlf(stored)
    }

    func crlf(_ lf: [UInt8]) -> [UInt8] {
        lf.flatMap { $0 == UInt8(ascii: "\n") ? [13, 10] : [$0] }
    }

    @Test(arguments: DKIMAlgorithm.allCases)
    func signedMessageVerifies(_ algorithm: DKIMAlgorithm) throws {
        let key = DKIMKey.generate(algorithm, selector: "sel-\(algorithm.keyType)")
        let signed = try signedForSending(sampleMessage, key: key)
        #expect(try dkimpyVerifies(signed, key: key))
    }

    @Test(arguments: DKIMAlgorithm.allCases)
    func tamperedMessageFails(_ algorithm: DKIMAlgorithm) throws {
        let key = DKIMKey.generate(algorithm, selector: "sel")
        let signed = String(decoding: try signedForSending(sampleMessage, key: key), as: UTF8.self)
        let body = signed.replacingOccurrences(of: "Hello   Bob", with: "Hello   Bob!")
        #expect(try !dkimpyVerifies(bytes(body), key: key), "a changed body")
        let subject = signed.replacingOccurrences(of: "with  tabs", with: "without tabs")
        #expect(try !dkimpyVerifies(bytes(subject), key: key), "a changed signed header")
        let from = signed.replacingOccurrences(of: "\r\n\r\n", with: "\r\nFrom: Mallory <m@example.net>\r\n\r\n")
        #expect(try !dkimpyVerifies(bytes(from), key: key), "an added From")
        let whitespace = signed.replacingOccurrences(of: "tabbed line", with: "tabbed \t line  ") + "\r\n \r\n"
        #expect(try dkimpyVerifies(bytes(whitespace), key: key), "whitespace that relaxed canonicalisation ignores")
    }

    @Test func messageWithoutBodyVerifies() throws {
        let key = DKIMKey.generate(.ed25519SHA256, selector: "sel")
        let signed = try signedForSending(bytes("From: a@example.com\nSubject: empty\n\n"), key: key)
        #expect(try dkimpyVerifies(signed, key: key))
    }

    @Test func bodyHashesMatchDkimpy() throws {
        let python = try #require(pythonWithDKIM)
        let directory = try TempDirectory()
        defer { directory.remove() }
        var rng = SeededGenerator(seed: 4)
        let bodies = (0..<300).map { _ in
            randomBody(length: Int.random(in: 0...80, using: &rng), using: &rng, pieces: ["a", "b", " ", "\t", "\r", "\n", "\r\n", "  ", "\n\n", "\u{e9}"])
        }
        let input = try directory.write("bodies.txt", bodies.map { $0.map { String(format: "%02x", $0) }.joined() }.joined(separator: "\n") + "\n")
        let script = try directory.write("bodyhash.py", Self.bodyHashScript)
        let result = try runCapturingOutput(python, [script, input], errorsPath: directory.file("stderr"))
        #expect(result.status == 0)
        let theirs = result.stdout.split(separator: "\n").map(String.init)
        try #require(theirs.count == bodies.count)
        for (body, their) in zip(bodies, theirs) {
            #expect(bodyHash(body).map { String(format: "%02x", $0) }.joined() == their, "\(body)")
        }
    }
}
