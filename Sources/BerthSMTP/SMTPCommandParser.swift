/// Turns one command line (CRLF removed) into an `SMTPCommand`. Pure; the framer has
/// already bounded the length.
public enum SMTPCommandParser {
    public static func parse(_ line: some Collection<UInt8>) -> Result<SMTPCommand, SMTPCommandError> {
        guard line.allSatisfy({ $0 >= 0x20 && $0 != 0x7F || $0 == 0x09 }) else {
            return .failure(.syntax("command contains control characters"))
        }
        let text = String(decoding: line, as: UTF8.self)
        let verbEnd = text.firstIndex(of: " ") ?? text.endIndex
        let verb = text[..<verbEnd].uppercased()
        let rest = text[verbEnd...].drop(while: { $0 == " " })
        let argument = String(rest.reversed().drop(while: { $0 == " " }).reversed())

        switch verb {
        case "EHLO", "HELO":
            // RFC 5321 §4.1.1.1: a domain or an address literal.
            guard !argument.isEmpty, !argument.contains(" ") else {
                return .failure(.syntax("\(verb) hostname"))
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
        guard argument.uppercased().hasPrefix(prefix) else { return .failure(.syntax(usage)) }
        let afterPrefix = argument.dropFirst(prefix.count).drop(while: { $0 == " " })
        guard afterPrefix.first == "<", let close = afterPrefix.firstIndex(of: ">") else {
            return .failure(.syntax(usage))
        }
        var path = String(afterPrefix[afterPrefix.index(after: afterPrefix.startIndex)..<close])
        guard path.utf8.count <= SMTPLimits.pathLength else { return .failure(.syntax("path longer than 256 octets")) }
        // RFC 5321 §4.1.2 / Appendix C: source routes are accepted and ignored.
        if path.hasPrefix("@"), let colon = path.firstIndex(of: ":") {
            path = String(path[path.index(after: colon)...])
        }
        if path.isEmpty {
            guard allowNull else { return .failure(.syntax(usage)) }
        } else {
            guard isMailbox(path) else { return .failure(.syntax("\(usage) (bad address <\(path)>)")) }
        }
        var parameters: [String: String] = [:]
        for token in afterPrefix[afterPrefix.index(after: close)...].split(separator: " ") {
            let pair = token.split(separator: "=", maxSplits: 1)
            guard let key = pair.first, !key.isEmpty else { return .failure(.syntax("bad parameter '\(token)'")) }
            parameters[key.uppercased()] = pair.count == 2 ? String(pair[1]) : ""
        }
        return .success((path, parameters))
    }

    /// `Local-part "@" Domain` with no spaces or brackets; quoted local parts are kept as sent.
    /// `postmaster` alone is allowed (RFC 5321 §4.1.1.3).
    static func isMailbox(_ path: String) -> Bool {
        if path.lowercased() == "postmaster" { return true }
        guard let at = path.lastIndex(of: "@") else { return false }
        let local = path[..<at]
        let domain = path[path.index(after: at)...]
        guard !local.isEmpty, !domain.isEmpty, local.utf8.count <= 64 else { return false }
        guard !path.contains(where: { $0 == "<" || $0 == ">" || $0 == " " || $0 == "," }) else { return false }
        if domain.hasPrefix("[") { return domain.hasSuffix("]") }
        return domain.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" }
        }
    }
}
