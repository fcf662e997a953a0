import Testing

@testable import BerthPOP3

struct POP3ReplyTests {
    static let fixtures: [(reply: POP3Reply, wire: String)] = [
        (.ok("ready"), "+OK ready\r\n"),
        (.ok(""), "+OK\r\n"),
        (.err("no such message"), "-ERR no such message\r\n"),
        (.err("maildrop already locked", code: .inUse), "-ERR [IN-USE] maildrop already locked\r\n"),
        (.err("try later", code: .sysTemp), "-ERR [SYS/TEMP] try later\r\n"),
        (.err("no", code: .sysPerm), "-ERR [SYS/PERM] no\r\n"),
        (.err("authentication failed", code: .auth), "-ERR [AUTH] authentication failed\r\n"),
        (.multiLine("2 messages", ["1 120", "2 200"]), "+OK 2 messages\r\n1 120\r\n2 200\r\n.\r\n"),
        (.multiLine("", []), "+OK\r\n.\r\n"),
        (.multiLine("x", [".dot", "."]), "+OK x\r\n..dot\r\n..\r\n.\r\n"),
        (.continuation(""), "+ \r\n"),
        (.continuation("VXNlcm5hbWU6"), "+ VXNlcm5hbWU6\r\n"),
        (.err("bad\r\nline ü"), "-ERR bad??line ??\r\n"),
    ]

    @Test(arguments: fixtures.indices)
    func encodes(_ index: Int) {
        let fixture = Self.fixtures[index]
        #expect(fixture.reply.description == fixture.wire)
    }

    @Test func capaFitsTheResponseLimit() {
        let session = POP3Session(configuration: .init(hostname: "pop.example.com"), isTLS: true)
        for line in session.capabilities.description.split(separator: "\r\n") {
            #expect(line.utf8.count + 2 <= POP3Limits.responseLineLength)
        }
    }
}

struct POP3UniqueIDTests {
    @Test func fromUIDValidityAndUID() {
        #expect(POP3UniqueID.make(uidValidity: 1_712_345_678, uid: 42) == "1712345678.42")
        let largest = POP3UniqueID.make(uidValidity: .max, uid: .max)
        #expect(largest == "4294967295.4294967295")
        #expect(POP3UniqueID.isValid(largest))
    }

    @Test func maildirNameWithoutFlags() {
        let name = "1712345678.M123456P4242Q7.mx,S=1234"
        #expect(POP3UniqueID.make(maildirName: name + ":2,S") == name)
        #expect(POP3UniqueID.make(maildirName: name + ":2,RS") == name, "flags do not change the id")
        #expect(POP3UniqueID.make(maildirName: name) == name)
    }

    /// (key, expect verbatim)
    static let keys: [(key: String, verbatim: Bool)] = [
        ("abc", true),
        (String(repeating: "x", count: 70), true),
        (String(repeating: "x", count: 71), false),
        ("with space", false),
        ("jörg", false),
        ("", false),
        ("~tilde", false),
        ("1712345678.M1P2Q3." + String(repeating: "host.", count: 20) + "example,S=10", false),
    ]

    @Test(arguments: keys.indices)
    func keysBecomeValidIDs(_ index: Int) {
        let fixture = Self.keys[index]
        let id = POP3UniqueID.make(key: Array(fixture.key.utf8))
        #expect(POP3UniqueID.isValid(id), "key: \(fixture.key)")
        #expect((id == fixture.key) == fixture.verbatim, "key: \(fixture.key) id: \(id)")
        if !fixture.verbatim {
            #expect(id.hasPrefix("~") && id.count == 44)
        }
        #expect(POP3UniqueID.make(key: Array(fixture.key.utf8)) == id, "stable")
    }

    @Test func distinctKeysGiveDistinctIDs() {
        let long = String(repeating: "y", count: 100)
        let ids = Set([long, long + "z", "a b", "a  b", "abc"].map { POP3UniqueID.make(key: Array($0.utf8)) })
        #expect(ids.count == 5)
    }

    @Test func validity() {
        #expect(!POP3UniqueID.isValid(""))
        #expect(!POP3UniqueID.isValid("a b"))
        #expect(!POP3UniqueID.isValid(String(repeating: "a", count: 71)))
        #expect(POP3UniqueID.isValid("!~"))
    }
}
