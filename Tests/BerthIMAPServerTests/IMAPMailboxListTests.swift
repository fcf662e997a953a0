import BerthCore
import BerthIMAP
import Testing

@testable import BerthIMAPServer

/// LIST and LSUB as pure values: folders and a command in, the exact untagged lines out.
struct IMAPMailboxListTests {
    /// A folder: its name, whether it is subscribed, its special use.
    static func folder(_ name: String, subscribed: Bool = false, _ use: SpecialUse? = nil) -> MailboxInfo {
        MailboxInfo(id: Int64(name.hashValue), name: name, specialUse: use, subscribed: subscribed, uidValidity: 1)
    }

    /// INBOX; Fruit (unsubscribed) with two subscribed children; Foo/Bar/Baz subscribed with
    /// neither Foo nor Foo/Bar a folder (RFC 5258 §5 example 6); Work/Sent (special-use)
    /// under an unsubscribed Work; Old and Old/2024 both subscribed (example 6 A1).
    static let folders: [MailboxInfo] = [
        folder("INBOX", subscribed: true),
        folder("Fruit"),
        folder("Fruit/Apple", subscribed: true),
        folder("Fruit/Pear", subscribed: true),
        folder("Foo/Bar/Baz", subscribed: true),
        folder("Work"),
        folder("Work/Sent", .sent),
        folder("Old", subscribed: true),
        folder("Old/2024", subscribed: true),
    ]

    struct Case: CustomTestStringConvertible, Sendable {
        var command: String
        var lines: [String]
        var testDescription: String { command }
    }

    static let cases: [Case] = [
        // RFC 3501 §6.3.9: `%` must give the unsubscribed parent of a subscribed child, \Noselect.
        Case(command: #"LSUB "" %"#, lines: [
            #"* LSUB () "/" INBOX"#,
            #"* LSUB (\Noselect) "/" Fruit"#,
            #"* LSUB (\Noselect) "/" Foo"#,
            #"* LSUB () "/" Old"#,
        ]),
        Case(command: #"LSUB "" *"#, lines: [
            #"* LSUB () "/" INBOX"#,
            #"* LSUB () "/" Fruit/Apple"#,
            #"* LSUB () "/" Fruit/Pear"#,
            #"* LSUB () "/" Foo/Bar/Baz"#,
            #"* LSUB () "/" Old"#,
            #"* LSUB () "/" Old/2024"#,
        ]),
        Case(command: #"LSUB Foo/ %"#, lines: [#"* LSUB (\Noselect) "/" Foo/Bar"#]),
        Case(command: #"LSUB "" Fruit/%"#, lines: [#"* LSUB () "/" Fruit/Apple"#, #"* LSUB () "/" Fruit/Pear"#]),
        Case(command: #"LSUB "" Work/%"#, lines: []),
        // A parent of several subscribed folders is listed once.
        Case(command: #"LSUB "" F%"#, lines: [#"* LSUB (\Noselect) "/" Fruit"#, #"* LSUB (\Noselect) "/" Foo"#]),
        // RFC 5258 §3: without RECURSIVEMATCH only the subscribed folders themselves.
        Case(command: #"LIST (SUBSCRIBED) "" %"#, lines: [
            #"* LIST (\HasNoChildren \Subscribed) "/" INBOX"#,
            #"* LIST (\HasChildren \Subscribed) "/" Old"#,
        ]),
        // §3, §3.5 and example 6: parents with a subscribed descendant carry CHILDINFO;
        // one that is no folder is \NonExistent.
        Case(command: #"LIST (SUBSCRIBED RECURSIVEMATCH) "" %"#, lines: [
            #"* LIST (\HasNoChildren \Subscribed) "/" INBOX"#,
            #"* LIST (\HasChildren) "/" Fruit ("CHILDINFO" ("SUBSCRIBED"))"#,
            #"* LIST (\NonExistent \HasChildren) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))"#,
            #"* LIST (\HasChildren \Subscribed) "/" Old ("CHILDINFO" ("SUBSCRIBED"))"#,
        ]),
        Case(command: #"LIST (SUBSCRIBED RECURSIVEMATCH) "" *"#, lines: [
            #"* LIST (\HasNoChildren \Subscribed) "/" INBOX"#,
            #"* LIST (\HasChildren) "/" Fruit ("CHILDINFO" ("SUBSCRIBED"))"#,
            #"* LIST (\HasNoChildren \Subscribed) "/" Fruit/Apple"#,
            #"* LIST (\HasNoChildren \Subscribed) "/" Fruit/Pear"#,
            #"* LIST (\NonExistent \HasChildren) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))"#,
            #"* LIST (\NonExistent \HasChildren) "/" Foo/Bar ("CHILDINFO" ("SUBSCRIBED"))"#,
            #"* LIST (\HasNoChildren \Subscribed) "/" Foo/Bar/Baz"#,
            #"* LIST (\HasChildren \Subscribed) "/" Old ("CHILDINFO" ("SUBSCRIBED"))"#,
            #"* LIST (\HasNoChildren \Subscribed) "/" Old/2024"#,
        ]),
        Case(command: #"LIST (SUBSCRIBED RECURSIVEMATCH) "" Foo/%"#, lines: [
            #"* LIST (\NonExistent \HasChildren) "/" Foo/Bar ("CHILDINFO" ("SUBSCRIBED"))"#,
        ]),
        Case(command: #"LIST (SPECIAL-USE RECURSIVEMATCH) "" %"#, lines: [
            #"* LIST (\HasChildren) "/" Work ("CHILDINFO" ("SPECIAL-USE"))"#,
        ]),
        Case(command: #"LIST (SPECIAL-USE) "" %"#, lines: []),
        // A plain LIST keeps its implied \Noselect parents and never says CHILDINFO.
        Case(command: #"LIST "" %"#, lines: [
            #"* LIST (\HasNoChildren) "/" INBOX"#,
            #"* LIST (\HasChildren) "/" Fruit"#,
            #"* LIST (\Noselect \HasChildren) "/" Foo"#,
            #"* LIST (\HasChildren) "/" Work"#,
            #"* LIST (\HasChildren) "/" Old"#,
        ]),
    ]

    @Test(arguments: cases)
    func answer(_ testCase: Case) throws {
        let command = try IMAPCommandParser.parse(Array("t \(testCase.command)".utf8)).get()
        let responses: [IMAPResponse]
        switch command.kind {
        case .list(let list):
            responses = IMAPMailboxList.list(Self.folders, list).map { .data(.list($0.item)) }
        case .lsub(let reference, let pattern):
            responses = IMAPMailboxList.lsub(Self.folders, reference: reference.name, pattern: pattern).map { .data(.lsub($0)) }
        default:
            Issue.record("not LIST or LSUB: \(command)")
            return
        }
        let lines = responses.map { String(decoding: IMAPResponseEncoder.encode($0), as: UTF8.self) }
        #expect(lines == testCase.lines.map { $0 + "\r\n" })
    }
}
