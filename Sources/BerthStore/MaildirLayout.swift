import BerthCore
import BerthIMAP
import Foundation

/// Where an account's folders live on disk: the Maildir++ layout Dovecot, Courier and
/// mutt read (www.courier-mta.org/imap/README.maildirquota.html). INBOX is the account's
/// Maildir itself (`mail/DOMAIN/USER/{cur,new,tmp}`); folder `A/B` is `USER/.A.B/`, each
/// level's name in modified UTF-7 (RFC 3501 §5.1.3, as Dovecot stores them), so a "." in
/// a folder name cannot be taken for a level separator ("." is `&AC4-`).
public struct MaildirLayout: Sendable {
    public let mailRoot: String

    public init(mailRoot: String) {
        self.mailRoot = mailRoot
    }

    /// The IMAP hierarchy delimiter (RFC 3501 §6.3.8).
    public static let delimiter: Character = "/"
    /// Folders being deleted are renamed to this prefix first; recovery finishes the job.
    static let deletingPrefix = ".DELETED."
    /// "." in a level's name: the modified UTF-7 form a strict decoder would refuse, so
    /// it can only be this escape (printable ASCII is never encoded).
    static let escapedDot = "&AC4-"
    /// Longest folder name accepted, in UTF-8 octets.
    public static let maxNameLength = 255

    public func accountDirectory(_ account: MailAccount) -> String {
        "\(mailRoot)/\(account.domain)/\(account.user)"
    }

    public func directory(of name: String, in account: MailAccount) -> String {
        let base = accountDirectory(account)
        return name == DefaultMailboxes.inbox ? base : base + "/" + Self.directoryName(of: name)
    }

    /// `A/B` → `.A.B`, each level modified-UTF-7 encoded with "." escaped.
    static func directoryName(of name: String) -> String {
        "." + name.split(separator: delimiter, omittingEmptySubsequences: false).map { level in
            ModifiedUTF7.encode(String(level)).replacingOccurrences(of: ".", with: escapedDot)
        }.joined(separator: ".")
    }

    /// `.A.B` → `A/B`; nil for names that are not folders (`.`, `..`, deletions in progress).
    static func folderName(ofDirectory directory: String) -> String? {
        guard directory.hasPrefix("."), directory.count > 1, directory != "..", !directory.hasPrefix(deletingPrefix) else {
            return nil
        }
        var levels: [String] = []
        for level in directory.dropFirst().split(separator: ".", omittingEmptySubsequences: false) {
            var pieces: [String] = []
            for piece in level.components(separatedBy: escapedDot) {
                guard let decoded = ModifiedUTF7.decode(Array(piece.utf8)) else { return nil }
                pieces.append(decoded)
            }
            let decoded = pieces.joined(separator: ".")
            guard !decoded.isEmpty else { return nil }
            levels.append(decoded)
        }
        let name = levels.joined(separator: String(delimiter))
        return name.uppercased() == DefaultMailboxes.inbox ? nil : name
    }

    /// The canonical form of a name a client sent: INBOX in any case is INBOX
    /// (RFC 3501 §5.1), everything else as it is.
    public static func canonical(_ name: String) -> String {
        if name.uppercased() == DefaultMailboxes.inbox { return DefaultMailboxes.inbox }
        if name.count > 6, name.prefix(6).uppercased() == "INBOX/" { return DefaultMailboxes.inbox + name.dropFirst(5) }
        return name
    }

    /// Why a name cannot be a folder, or nil if it can.
    public static func problem(with name: String) -> String? {
        if name.isEmpty { return "empty name" }
        if name.utf8.count > maxNameLength { return "longer than \(maxNameLength) octets" }
        if name.hasPrefix("/") || name.hasSuffix("/") || name.contains("//") { return "empty level" }
        for level in name.split(separator: delimiter) where level == "." || level == ".." {
            return "\"\(level)\" is not a folder name"
        }
        if name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0 == "*" || $0 == "%" }) {
            return "control characters and wildcards are not allowed"
        }
        return nil
    }
}

/// A Maildir file name: `UNIQUE,S=size,W=crlfsize:2,FLAGS` (cr.yp.to/proto/maildir.html;
/// `S=` and `W=` as Dovecot writes them, so either server can read the sizes without
/// opening the file).
struct MaildirFileName: Hashable {
    /// Everything before `:2,`: what stays the same when flags change.
    var base: String
    /// The letters after `:2,`; nil for a file in `new/`, which has no info yet.
    var info: String?

    init(base: String, info: String?) {
        self.base = base
        self.info = info
    }

    init(_ name: String) {
        if let range = name.range(of: ":2,") {
            base = String(name[..<range.lowerBound])
            info = String(name[range.upperBound...])
        } else {
            base = name
            info = nil
        }
    }

    var name: String { info.map { "\(base):2,\($0)" } ?? base }

    /// The `W=` (CRLF size) of the name, if present.
    var crlfSize: Int? { sizeField("W") }
    var fileSize: Int? { sizeField("S") }

    private func sizeField(_ letter: Character) -> Int? {
        for field in base.split(separator: ",").dropFirst() where field.hasPrefix("\(letter)=") {
            return Int(field.dropFirst(2))
        }
        return nil
    }

    /// Relative path inside the folder for these flags: `cur/BASE:2,INFO`. Keywords are
    /// kept in the index only.
    static func curPath(base: String, flags: MessageFlags) -> String {
        "cur/\(base):2,\(flags.maildirInfo)"
    }
}

/// Unique Maildir names for this process: time, microseconds, pid, sequence, host.
final class MaildirNames: Sendable {
    // One sequence for the whole process: the Maildir writer and the IMAP store name
    // files in the same folders.
    private static let lock = NSLock()
    private nonisolated(unsafe) static var sequence: UInt64 = 0
    private let hostname: String
    /// getpid(2) is a system call each time (glibc does not cache it), and Berth never forks.
    private let pid = getpid()

    init(hostname: String) {
        self.hostname = hostname.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: ":", with: "_")
    }

    /// `SECONDS.MmicrosPpidQseq.host,S=fileSize,W=crlfSize`.
    func next(fileSize: Int, crlfSize: Int, now: Date = Date()) -> String {
        let seq = Self.lock.withLock { () -> UInt64 in
            Self.sequence &+= 1
            return Self.sequence
        }
        let seconds = Int(now.timeIntervalSince1970)
        let micros = Int((now.timeIntervalSince1970 - Double(seconds)) * 1_000_000)
        return "\(seconds).M\(micros)P\(pid)Q\(seq).\(hostname),S=\(fileSize),W=\(crlfSize)"
    }
}
