import BerthCore

/// Turns one command line (CRLF removed) into an `SMTPCommand`. Pure; the framer has
/// already bounded the length.
public enum SMTPCommandParser {
    /// Longest verb we know ("STARTTLS"); anything longer is not a command.
    static let maxVerbLength = 8

    public static func parse(_ line: some Collection<UInt8>) -> Result<SMTPCommand, SMTPCommandError> {
        // Works on bytes: this runs for every command of every session.
        let bytes = Array(line)
        guard bytes.allSatisfy({ $0 >= 0x20 && $0 != 0x7F || $0 == 0x09 }) else {
            return .failure(.syntax("command contains control characters"))
        }
        let verbEnd = bytes.firstIndex(of: UInt8(ascii: " ")) ?? bytes.endIndex
        guard verbEnd <= maxVerbLength else { return .failure(.unrecognized) }
        let verb = String(decoding: bytes[..<verbEnd].map(asciiUppercase), as: UTF8.self)
        var start = verbEnd
        while start < bytes.endIndex && bytes[start] == UInt8(ascii: " ") { start += 1 }
        var end = bytes.endIndex
        while end > start && bytes[end - 1] == UInt8(ascii: " ") { end -= 1 }
        let argument = String(decoding: bytes[start..<end], as: UTF8.self)

        switch verb {
        case "EHLO", "HELO":
            // RFC 5321 §4.1.1.1: a domain or an address literal.
            guard !argument.isEmpty, !argument.contains(" ") else {
                return .failure(.syntax("\(verb) hostname"))
            }
            if argument.hasPrefix("[") && !isAddressLiteral(argument) {
                return .failure(.syntax("\(verb) [address literal]: \(argument) is not an IPv4 or IPv6 address"))
            }
            return .success(verb == "EHLO" ? .ehlo(argument) : .helo(argument))
        case "MAIL":
            return parsePath(argument, prefix: "FROM:", allowNull: true).map { .mail(from: $0.0, parameters: $0.1) }
        case "RCPT":
            return parsePath(argument, prefix: "TO:", allowNull: false).map { .rcpt(to: $0.0, parameters: $0.1) }
        case "DATA": return argument.isEmpty ? .success(.data) : .failure(.syntax("DATA"))
        case "RSET": return argument.isEmpty ? .success(.rset) : .failure(.syntax("RSET"))
        case "QUIT": return argument.isEmpty ? .success(.quit) : .failure(.syntax("QUIT"))
        case "NOOP": return .success(.noop)  // RFC 5321 §4.1.1.9: a parameter is allowed and ignored
        case "STARTTLS": return argument.isEmpty ? .success(.startTLS) : .failure(.syntax("STARTTLS"))
        case "VRFY": return argument.isEmpty ? .failure(.syntax("VRFY address")) : .success(.vrfy(argument))
        case "EXPN": return argument.isEmpty ? .failure(.syntax("EXPN list")) : .success(.expn(argument))
        case "HELP": return .success(.help(argument))
        case "AUTH":
            let parts = argument.split(separator: " ", omittingEmptySubsequences: true)
            guard (1...2).contains(parts.count) else { return .failure(.syntax("AUTH mechanism [initial-response]")) }
            return .success(.auth(mechanism: parts[0].uppercased(), initialResponse: parts.count == 2 ? String(parts[1]) : nil))
        case "BDAT", "TURN", "ETRN", "ATRN", "SEND", "SOML", "SAML":
            return .success(.unsupported(verb))
        default:
            return .failure(.unrecognized)
        }
    }

    /// `FROM:<path> [params]` / `TO:<path> [params]` (RFC 5321 §4.1.2). A space after the
    /// colon is tolerated, as many clients send one.
    static func parsePath(_ argument: String, prefix: String, allowNull: Bool)
        -> Result<(String, [String: String]), SMTPCommandError>
    {
        let usage = prefix == "FROM:" ? "MAIL FROM:<address>" : "RCPT TO:<address>"
        let bytes = Array(argument.utf8)
        let prefixBytes = Array(prefix.utf8)
        guard bytes.count >= prefixBytes.count, zip(bytes, prefixBytes).allSatisfy({ asciiUppercase($0) == $1 }) else {
            return .failure(.syntax(usage))
        }
        var open = prefixBytes.count
        while open < bytes.count && bytes[open] == UInt8(ascii: " ") { open += 1 }
        guard open < bytes.count, bytes[open] == UInt8(ascii: "<"),
              let close = bytes[open...].firstIndex(of: UInt8(ascii: ">"))
        else { return .failure(.syntax(usage)) }
        var pathBytes = bytes[(open + 1)..<close]
        guard pathBytes.count <= SMTPLimits.pathLength else { return .failure(.syntax("path longer than 256 octets")) }
        // RFC 5321 §4.1.2 / Appendix C: source routes are accepted and ignored.
        if pathBytes.first == UInt8(ascii: "@"), let colon = pathBytes.firstIndex(of: UInt8(ascii: ":")) {
            pathBytes = pathBytes[(colon + 1)...]
        }
        let path = unquoteLocalPart(String(decoding: pathBytes, as: UTF8.self))
        if pathBytes.isEmpty {
            guard allowNull else { return .failure(.syntax(usage)) }
        } else {
            guard isMailbox(pathBytes) else { return .failure(.syntax("\(usage) (bad address <\(path)>)")) }
        }
        var parameters: [String: String] = [:]
        for token in bytes[(close + 1)...].split(separator: UInt8(ascii: " ")) {
            let equals = token.firstIndex(of: UInt8(ascii: "=")) ?? token.endIndex
            guard equals > token.startIndex else {
                return .failure(.syntax("bad parameter '\(String(decoding: token, as: UTF8.self))'"))
            }
            let key = String(decoding: token[..<equals].map(asciiUppercase), as: UTF8.self)
            parameters[key] = equals < token.endIndex ? String(decoding: token[(equals + 1)...], as: UTF8.self) : ""
        }
        return .success((path, parameters))
    }

    /// `Local-part "@" Domain` (RFC 5321 §4.1.2) with no spaces or brackets in the local
    /// part; the domain is labels of letters, digits, hyphens (or UTF-8), or an address
    /// literal. `postmaster` alone is allowed (RFC 5321 §4.1.1.3).
    static func isMailbox(_ path: ArraySlice<UInt8>) -> Bool {
        if path.count == 10 && path.map(asciiUppercase).elementsEqual("POSTMASTER".utf8) { return true }
        guard let at = path.lastIndex(of: UInt8(ascii: "@")) else { return false }
        let local = path[..<at]
        let domain = path[(at + 1)...]
        guard !local.isEmpty, !domain.isEmpty, local.count <= 64 else { return false }
        let isQuoted = local.count >= 2 && local.first == UInt8(ascii: "\"") && local.last == UInt8(ascii: "\"")
        let forbidden: [UInt8] = isQuoted ? [UInt8(ascii: "<"), UInt8(ascii: ">")] : Array("<> ,\"".utf8)
        guard !path.contains(where: forbidden.contains) else { return false }
        if domain.first == UInt8(ascii: "[") { return domain.last == UInt8(ascii: "]") }
        return domain.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.allSatisfy { byte in
                byte >= 0x80 || byte == UInt8(ascii: "-") || (byte >= 0x30 && byte <= 0x39)
                    || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A)
            }
        }
    }

    /// RFC 5321 §4.1.3 address literal: `[1.2.3.4]` or `[IPv6:...]`.
    static func isAddressLiteral(_ text: String) -> Bool {
        guard text.hasPrefix("["), text.hasSuffix("]"), text.count > 2 else { return false }
        let inner = String(text.dropFirst().dropLast())
        if inner.lowercased().hasPrefix("ipv6:") {
            return IPLiteral.canonical(String(inner.dropFirst(5)))?.family == .ipv6
        }
        return IPLiteral.canonical(inner)?.family == .ipv4 && inner.split(separator: ".").count == 4
    }

    /// RFC 5321 §4.1.2: `"bob"@example.com` is the same mailbox as `bob@example.com` when
    /// the quotes hold nothing a dot-atom could not; such a path is returned unquoted.
    static func unquoteLocalPart(_ path: String) -> String {
        guard path.first == "\"", let at = path.lastIndex(of: "@") else { return path }
        let local = path[..<at]
        guard local.count >= 2, local.last == "\"" else { return path }
        let inner = local.dropFirst().dropLast()
        let atext = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~")
        let dotAtom = !inner.isEmpty && inner.first != "." && inner.last != "." && !inner.contains("..")
            && inner.allSatisfy { atext.contains($0) || $0 == "." }
        return dotAtom ? String(inner) + path[at...] : path
    }

    static func asciiUppercase(_ byte: UInt8) -> UInt8 {
        byte >= 0x61 && byte <= 0x7A ? byte - 0x20 : byte
    }
}
