import BerthCore
import BerthIMAP
import Testing

@testable import BerthIMAPServer

/// `SelectedMailbox` as a pure value: changes in, untagged responses out.
struct SelectedMailboxTests {
    static func record(_ uid: UInt32, _ flags: MessageFlags.System = [], modSeq: UInt64 = 1) -> MessageRecord {
        MessageRecord(uid: uid, flags: MessageFlags(system: flags), internalDate: 0, size: 10, modSeq: modSeq)
    }

    static func view(_ uids: [UInt32], readOnly: Bool = false) -> SelectedMailbox {
        let info = MailboxInfo(id: 7, name: "INBOX", uidValidity: 42, uidNext: (uids.max() ?? 0) + 1, highestModSeq: 5)
        return SelectedMailbox(snapshot: MailboxSnapshot(mailbox: info, messages: uids.map { record($0) }), readOnly: readOnly)
    }

    static func changes(changed: [MessageRecord] = [], expunged: [UInt32] = [], uidNext: UInt32 = 100, modSeq: UInt64 = 9) -> MailboxChanges {
        MailboxChanges(
            mailbox: MailboxInfo(id: 7, name: "INBOX", uidValidity: 42, uidNext: uidNext, highestModSeq: modSeq),
            changed: changed, expunged: expunged)
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var label: String
        var uids: [UInt32]
        var changes: MailboxChanges
        var expungeAllowed: Bool
        var qresync = false
        var condStore = false
        var responses: [IMAPResponse]
        var after: [UInt32]
        var testDescription: String { label }
    }

    static let cases: [Case] = [
        Case(label: "nothing changed", uids: [1, 2], changes: changes(), expungeAllowed: true, responses: [], after: [1, 2]),
        Case(
            label: "new message: EXISTS", uids: [1, 2], changes: changes(changed: [record(5, modSeq: 9)]), expungeAllowed: true,
            responses: [.data(.exists(3)), .data(.recent(0))], after: [1, 2, 5]),
        Case(
            label: "flag change: FETCH FLAGS", uids: [1, 2], changes: changes(changed: [record(2, .seen, modSeq: 9)]),
            expungeAllowed: true, responses: [.data(.fetch(2, [.flags([.seen])]))], after: [1, 2]),
        Case(
            label: "flag change under CONDSTORE carries MODSEQ", uids: [1, 2], changes: changes(changed: [record(1, .flagged, modSeq: 9)]),
            expungeAllowed: true, condStore: true, responses: [.data(.fetch(1, [.flags([.flagged]), .modSeq(9)]))], after: [1, 2]),
        Case(
            label: "expunges from the top down", uids: [1, 2, 3, 4], changes: changes(expunged: [2, 4]), expungeAllowed: true,
            responses: [.data(.expunge(4)), .data(.expunge(2))], after: [1, 3]),
        Case(
            label: "expunge held during FETCH/STORE/SEARCH", uids: [1, 2, 3], changes: changes(expunged: [2]),
            expungeAllowed: false, responses: [], after: [1, 2, 3]),
        Case(
            label: "new message while an expunge is held counts the held one", uids: [1, 2],
            changes: changes(changed: [record(3)], expunged: [1]), expungeAllowed: false,
            responses: [.data(.exists(3)), .data(.recent(0))], after: [1, 2, 3]),
        Case(
            label: "expunge then arrival: EXPUNGE before EXISTS", uids: [1, 2],
            changes: changes(changed: [record(3)], expunged: [1]), expungeAllowed: true,
            responses: [.data(.expunge(1)), .data(.exists(2)), .data(.recent(0))], after: [2, 3]),
        Case(
            label: "QRESYNC: VANISHED instead of EXPUNGE", uids: [1, 2, 3, 4], changes: changes(expunged: [2, 3]), expungeAllowed: true,
            qresync: true, responses: [.data(.vanished(earlier: false, IMAPSequenceSet(IMAPSequenceRange(2...3))))], after: [1, 4]),
        Case(
            label: "unknown expunged UIDs are ignored", uids: [5], changes: changes(expunged: [1, 2]), expungeAllowed: true,
            responses: [], after: [5]),
        Case(
            label: "added and expunged before the view saw it", uids: [1], changes: changes(changed: [record(2)], expunged: [2]),
            expungeAllowed: true, responses: [], after: [1]),
    ]

    @Test(arguments: cases)
    func apply(_ testCase: Case) {
        var view = Self.view(testCase.uids)
        view.qresync = testCase.qresync
        view.condStore = testCase.condStore
        let responses = view.apply(testCase.changes, expungeAllowed: testCase.expungeAllowed)
        #expect(responses == testCase.responses)
        #expect(view.messages.map(\.uid) == testCase.after)
        #expect(view.highestModSeq == 9)
    }

    /// RFC 3501 §2.3.2: messages this session claimed are \Recent in it: RECENT after
    /// EXISTS, \Recent in FLAGS, gone from the count when expunged.
    @Test func recentArrivals() {
        var view = Self.view([1, 2])
        let responses = view.apply(Self.changes(changed: [Self.record(3), Self.record(4)]), expungeAllowed: true, claimed: [3, 4, 9])
        #expect(responses == [.data(.exists(4)), .data(.recent(2))])
        #expect(view.recent == [3, 4], "a claimed UID the view does not hold is not counted")
        #expect(view.flagItems(Self.record(3)) == [.flags([.recent])])
        #expect(view.flagItems(Self.record(1)) == [.flags([])])
        _ = view.expunged([3])
        #expect(view.recent == [4])
    }

    @Test func heldExpungesAreFlushedLater() {
        var view = Self.view([1, 2, 3])
        #expect(view.apply(Self.changes(expunged: [2]), expungeAllowed: false) == [])
        // A flag change of a held message is not reported; of others it is, at its old number.
        let responses = view.apply(Self.changes(changed: [Self.record(3, .seen, modSeq: 10)], modSeq: 10), expungeAllowed: false)
        #expect(responses == [.data(.fetch(3, [.flags([.seen])]))])
        #expect(view.flushExpunges() == [.data(.expunge(2))])
        #expect(view.messages.map(\.uid) == [1, 3])
        #expect(view.sequenceNumber(of: 3) == 2)
    }

    struct SetCase: CustomTestStringConvertible, Sendable {
        var label: String
        var set: IMAPSequenceSet
        var uid: Bool
        var indexes: [Int]
        var testDescription: String { label }
    }

    /// The view holds UIDs 3, 5, 9, 10.
    static let setCases: [SetCase] = [
        SetCase(label: "1:*", set: IMAPSequenceSet(IMAPSequenceRange(.number(1), .last)), uid: false, indexes: [0, 1, 2, 3]),
        SetCase(label: "reversed 3:2", set: IMAPSequenceSet(IMAPSequenceRange(3...3), IMAPSequenceRange(.number(3), .number(2))),
                uid: false, indexes: [1, 2]),
        SetCase(label: "past the end", set: IMAPSequenceSet(IMAPSequenceRange(4...9)), uid: false, indexes: [3]),
        SetCase(label: "UID 4:9", set: IMAPSequenceSet(IMAPSequenceRange(4...9)), uid: true, indexes: [1, 2]),
        SetCase(label: "UID 20:* is the last", set: IMAPSequenceSet(IMAPSequenceRange(.number(20), .last)), uid: true, indexes: [3]),
        SetCase(label: "UID absent", set: IMAPSequenceSet(IMAPSequenceRange(4)), uid: true, indexes: []),
    ]

    @Test(arguments: setCases)
    func sequenceSets(_ testCase: SetCase) {
        #expect(Self.view([3, 5, 9, 10]).indexes(of: testCase.set, uid: testCase.uid) == testCase.indexes)
    }

    @Test func compressesSequenceSets() {
        #expect(SelectedMailbox.sequenceSet([7, 1, 2, 3, 9, 8]) == IMAPSequenceSet(IMAPSequenceRange(1...3), IMAPSequenceRange(7...9)))
        #expect(SelectedMailbox.sequenceSet([4]) == IMAPSequenceSet(IMAPSequenceRange(4)))
    }

    @Test func dates() {
        let dateTime = IMAPDates.dateTime(seconds: 1_700_000_000)
        #expect(dateTime.description.contains("14-Nov-2023 22:13:20 +0000"))
        #expect(IMAPDates.seconds(dateTime) == 1_700_000_000)
        #expect(IMAPDates.dayNumber(rfc5322: "Tue, 14 Nov 2023 23:59:00 -0500") == IMAPDates.dayNumber(seconds: 1_700_000_000))
        #expect(IMAPDates.dayNumber(rfc5322: "garbage") == nil)
    }

    @Test func searchReadsMessagesLast() {
        let key = IMAPSearchKey.and([.body("x"), .from("bob"), .unseen, .not(.larger(5))])
        #expect(IMAPSearch.cheapFirst(key) == .and([.unseen, .not(.larger(5)), .from("bob"), .body("x")]))
        #expect(IMAPSearch.content(.or(.seen, .subject("a"))) == .header)
    }

    @Test func headerEnds() {
        #expect(IMAPFetch.headerEnd(Array("A: b\n\nbody".utf8), from: 0) == 6)
        #expect(IMAPFetch.headerEnd(Array("A: b\r\n\r\nbody".utf8), from: 0) == 8)
        #expect(IMAPFetch.headerEnd(Array("\nbody".utf8), from: 0) == 1)
        #expect(IMAPFetch.headerEnd(Array("A: b\nC: d\n".utf8), from: 0) == nil)
        #expect(IMAPFetch.content([.envelope, .bodySection(IMAPSection(text: .headerFields(["SUBJECT"])), partial: nil, peek: true)]) == .header)
        #expect(IMAPFetch.content([.bodySection(IMAPSection(part: [1], text: .header), partial: nil, peek: true)]) == .full)
        #expect(IMAPFetch.content([.flags, .uid]) == .none)
    }

    @Test func listPatterns() {
        #expect(IMAPMailboxList.matches("*", "a/b"))
        #expect(!IMAPMailboxList.matches("%", "a/b"))
        #expect(IMAPMailboxList.matches("a/%", "a/b"))
        #expect(IMAPMailboxList.matches("inbox", "INBOX"))
        #expect(!IMAPMailboxList.matches("sent", "Sent"))
        #expect(IMAPMailboxList.matches("%/b", "a/b"))
        #expect(!IMAPMailboxList.matches("%b", "a/b"))
        #expect(IMAPMailboxList.matches("a*", "a"))
        #expect(IMAPMailboxList.matches("**%", "x/y"))
        #expect(!IMAPMailboxList.matches("a", "ab"))
        #expect(!IMAPMailboxList.matches("", "a"))
        #expect(IMAPMailboxList.matches("", ""))
        #expect(IMAPMailboxList.matches("Arch*/2%", "Archive/2024"))
    }

    /// QA found `*a*a*a*a*a*a*b` against 200 `a`s ran for minutes in a backtracking matcher
    /// and tied up the store's threads: wildcard matching is linear in each side now.
    @Test func listPatternsCannotExplode() {
        let name = String(repeating: "a", count: 255)
        let pattern = String(repeating: "*a", count: 40) + "*b" + String(repeating: "%a", count: 40) + "%b"
        let clock = ContinuousClock()
        var matched = true
        let elapsed = clock.measure { matched = IMAPMailboxList.matches(pattern, name) }
        #expect(!matched)
        #expect(elapsed < .seconds(30), "a backtracking matcher would not finish at all")
    }
}
