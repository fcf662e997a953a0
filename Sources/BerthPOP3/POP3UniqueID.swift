import Crypto
import Foundation

/// RFC 1939 §7 UIDL unique-ids: 1 to 70 octets in 0x21–0x7E, the same for a message in
/// every session, never given to another message of the maildrop.
///
/// Berth's choice is `make(uidValidity:uid:)`: the mailbox's UIDVALIDITY and the message's
/// IMAP UID (or the message index's never-reused row id), so POP3 and IMAP agree on which
/// message is which, and a rebuilt mailbox (a new UIDVALIDITY) changes every id, making
/// clients download again rather than skip messages they have never seen.
/// `make(key:)` covers a store that has only a Maildir base name.
public enum POP3UniqueID {
    /// RFC 1939 §7: at most 70 characters.
    public static let maxLength = 70

    /// `UIDVALIDITY.UID` in decimal, e.g. `1712345678.42` (at most 21 characters).
    public static func make(uidValidity: UInt32, uid: UInt32) -> String {
        "\(uidValidity).\(uid)"
    }

    /// Any stable key, such as a Maildir base name. A key that is already a valid id and does not start with "~" is
    /// used as it is; anything else (too long, spaces, 8-bit) becomes "~" and the base64url
    /// SHA-256 of the key (44 characters). The "~" keeps the two forms apart, so two keys
    /// never share an id.
    public static func make(key: some Collection<UInt8>) -> String {
        let bytes = Array(key)
        if bytes.first != UInt8(ascii: "~"), isValid(bytes) {
            return String(decoding: bytes, as: UTF8.self)
        }
        let digest = Array(SHA256.hash(data: bytes))
        return "~" + base64URL(digest)
    }

    /// A Maildir file name: the base name before ":" (the info part, which changes when
    /// flags change), through `make(key:)`.
    public static func make(maildirName name: String) -> String {
        let base = name.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return make(key: Array(base.utf8))
    }

    /// RFC 1939 §7 `unique-id`: 1 to 70 octets, each 0x21–0x7E.
    public static func isValid(_ id: some Collection<UInt8>) -> Bool {
        (1...maxLength).contains(id.count) && id.allSatisfy { $0 >= 0x21 && $0 <= 0x7E }
    }

    public static func isValid(_ id: String) -> Bool { isValid(Array(id.utf8)) }

    /// RFC 4648 §5, without padding.
    static func base64URL(_ bytes: [UInt8]) -> String {
        String(Data(bytes).base64EncodedString().compactMap { character -> Character? in
            switch character {
            case "+": return "-"
            case "/": return "_"
            case "=": return nil
            default: return character
            }
        })
    }
}
