/// Turns one command line (CRLF removed) into a `POP3Command`. Pure; works on bytes.
///
/// RFC 1939 §3 and RFC 2449 §4: a case-insensitive keyword of three or four characters,
/// arguments separated by a space, printable ASCII. Leniencies real clients need: runs of
/// spaces and trailing spaces between arguments are tolerated, and 8-bit (UTF-8) bytes are
/// accepted in USER and PASS. Control characters are refused everywhere.
public enum POP3CommandParser {
    static let space = UInt8(ascii: " ")

    public static func parse(_ line: some Collection<UInt8>) -> Result<POP3Command, POP3CommandError> {
        let bytes = Array(line)
        let verbEnd = bytes.firstIndex(of: space) ?? bytes.endIndex
        guard (3...4).contains(verbEnd), bytes[..<verbEnd].allSatisfy(isLetter) else {
            return .failure(.unknownCommand)
        }
        let verb = String(decoding: bytes[..<verbEnd].map(asciiUppercase), as: UTF8.self)
        let carriesCredentials = verb == "PASS" || verb == "AUTH"
        let limit = carriesCredentials ? POP3Limits.credentialLineLength : POP3Limits.commandLineLength
        guard bytes.count + 2 <= limit else {
            return .failure(POP3CommandError(.lineTooLong, "command longer than \(limit) octets (RFC 2449 section 4)"))
        }
        guard !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            return .failure(POP3CommandError(.syntax, "command contains control characters"))
        }
        if verb == "PASS" {
            // RFC 1939 §7: exactly one argument, which may itself contain spaces.
            guard verbEnd + 1 < bytes.count else { return syntax("PASS needs a password") }
            return .success(.pass(String(decoding: bytes[(verbEnd + 1)...], as: UTF8.self)))
        }
        let arguments = bytes[verbEnd...].split(separator: space)
        let eightBitAllowed = verb == "USER"
        if !eightBitAllowed, arguments.contains(where: { argument in argument.contains { $0 >= 0x80 } }) {
            return syntax("\(verb) arguments must be ASCII")
        }
        func text(_ index: Int) -> String { String(decoding: arguments[index], as: UTF8.self) }

        switch verb {
        case "USER":
            guard arguments.count == 1 else { return syntax("USER takes one argument: the mailbox name") }
            return .success(.user(text(0)))
        case "APOP":
            guard arguments.count == 2 else { return syntax("APOP takes a name and a digest") }
            return .success(.apop(name: text(0), digest: text(1)))
        case "AUTH":
            switch arguments.count {
            case 0: return .success(.authMechanisms)
            case 1: return .success(.auth(mechanism: text(0).uppercased(), initialResponse: nil))
            case 2: return .success(.auth(mechanism: text(0).uppercased(), initialResponse: text(1)))
            default: return syntax("AUTH takes a mechanism and an optional initial response")
            }
        case "STAT", "NOOP", "RSET", "QUIT", "CAPA", "STLS":
            guard arguments.isEmpty else { return syntax("\(verb) takes no arguments") }
            switch verb {
            case "STAT": return .success(.stat)
            case "NOOP": return .success(.noop)
            case "RSET": return .success(.rset)
            case "QUIT": return .success(.quit)
            case "CAPA": return .success(.capa)
            default: return .success(.stls)
            }
        case "LIST", "UIDL":
            guard arguments.count <= 1 else { return syntax("\(verb) takes at most one message number") }
            var number: Int?
            if let argument = arguments.first {
                guard let n = messageNumber(argument) else { return syntax(messageNumberUsage) }
                number = n
            }
            return .success(verb == "LIST" ? .list(number) : .uidl(number))
        case "RETR", "DELE":
            guard arguments.count == 1 else { return syntax("\(verb) takes one message number") }
            guard let n = messageNumber(arguments[0]) else { return syntax(messageNumberUsage) }
            return .success(verb == "RETR" ? .retr(n) : .dele(n))
        case "TOP":
            guard arguments.count == 2 else { return syntax("TOP takes a message number and a line count") }
            guard let n = messageNumber(arguments[0]) else { return syntax(messageNumberUsage) }
            guard let lines = number(arguments[1]) else {
                return syntax("line count must be a number from 0 to \(POP3Limits.maxNumber)")
            }
            return .success(.top(n, lines: lines))
        default:
            return .failure(.unknownCommand)
        }
    }

    static let messageNumberUsage = "message number must be a number from 1 to \(POP3Limits.maxNumber)"

    static func syntax(_ reason: String) -> Result<POP3Command, POP3CommandError> {
        .failure(POP3CommandError(.syntax, reason))
    }

    /// RFC 1939 §3 `msg`: a message number, 1 or more.
    static func messageNumber(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard let n = number(bytes), n >= 1 else { return nil }
        return n
    }

    /// Decimal digits only (no sign), at most `POP3Limits.maxNumber`; leading zeros allowed.
    static func number(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard !bytes.isEmpty else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= 0x30 && byte <= 0x39 else { return nil }
            value = value * 10 + Int(byte - 0x30)
            guard value <= POP3Limits.maxNumber else { return nil }
        }
        return value
    }

    static func isLetter(_ byte: UInt8) -> Bool {
        (byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x7A
    }

    static func asciiUppercase(_ byte: UInt8) -> UInt8 {
        byte >= 0x61 && byte <= 0x7A ? byte - 0x20 : byte
    }
}
