extension IMAPParser {
    /// `search = "SEARCH" [search-return-opts] SP search-program` (RFC 4731 §3)
    /// `search-program = ["CHARSET" SP charset SP] search-key *(SP search-key)`
    /// (RFC 3501: `"SEARCH" [SP "CHARSET" SP astring] 1*(SP search-key)`)
    mutating func search(uid: Bool) throws(ParseFailure) -> IMAPCommand.Kind {
        try sp()
        var returnOptions: [IMAPSearchReturnOption]?
        var mark = index
        if word() == "RETURN" {
            try sp()
            returnOptions = try searchReturnOpts()
            try sp()
        } else {
            index = mark
        }
        var charset: String?
        mark = index
        if word() == "CHARSET" {
            try sp()
            charset = try astringText("charset").uppercased()
            try sp()
        } else {
            index = mark
        }
        var keys = [try searchKey()]
        while peek(ASCII.space) {
            try sp()
            keys.append(try searchKey())
        }
        let key = keys.count == 1 ? keys[0] : .and(keys)
        return .search(IMAPSearchCommand(charset: charset, returnOptions: returnOptions, key: key), uid: uid)
    }

    /// `search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"`
    /// `search-return-opt = "MIN" / "MAX" / "ALL" / "COUNT"` (RFC 4731), `/ "SAVE"` (RFC 5182)
    mutating func searchReturnOpts() throws(ParseFailure) -> [IMAPSearchReturnOption] {
        try expect(UInt8(ascii: "("), "( after RETURN")
        var options: [IMAPSearchReturnOption] = []
        if keyword(")") { return options }
        while true {
            let start = index
            guard let option = IMAPSearchReturnOption(rawValue: word()) else {
                throw ParseFailure("unknown SEARCH return option at octet \(start + 1)")
            }
            options.append(option)
            guard peek(ASCII.space) else { break }
            try sp()
        }
        try expect(UInt8(ascii: ")"), ") after SEARCH return options")
        return options
    }

    /// `search-key = "ALL" / "ANSWERED" / "BCC" SP astring / "BEFORE" SP date /
    ///   "BODY" SP astring / "CC" SP astring / "DELETED" / "FLAGGED" / "FROM" SP astring /
    ///   "KEYWORD" SP flag-keyword / "NEW" / "OLD" / "ON" SP date / "RECENT" / "SEEN" /
    ///   "SINCE" SP date / "SUBJECT" SP astring / "TEXT" SP astring / "TO" SP astring /
    ///   "UNANSWERED" / "UNDELETED" / "UNFLAGGED" / "UNKEYWORD" SP flag-keyword /
    ///   "UNSEEN" / "DRAFT" / "HEADER" SP header-fld-name SP astring / "LARGER" SP number /
    ///   "NOT" SP search-key / "OR" SP search-key SP search-key / "SENTBEFORE" SP date /
    ///   "SENTON" SP date / "SENTSINCE" SP date / "SMALLER" SP number /
    ///   "UID" SP sequence-set / "UNDRAFT" / sequence-set / "(" search-key *(SP search-key) ")"`
    /// `search-key =/ search-modsequence` (RFC 7162 §7)
    mutating func searchKey() throws(ParseFailure) -> IMAPSearchKey {
        depth += 1
        defer { depth -= 1 }
        guard depth <= IMAPLimits.maxSearchDepth else { throw failure("search keys nested too deeply") }
        if keyword("(") {
            var keys = [try searchKey()]
            while peek(ASCII.space) {
                try sp()
                keys.append(try searchKey())
            }
            try expect(UInt8(ascii: ")"), ") after search keys")
            return keys.count == 1 ? keys[0] : .and(keys)
        }
        if let byte = peek(), ASCII.isDigit(byte) || byte == UInt8(ascii: "*") || byte == UInt8(ascii: "$") {
            return .sequenceSet(try sequenceSet())
        }
        let start = index
        let name = word()
        switch name {
        case "ALL": return .all
        case "ANSWERED": return .answered
        case "DELETED": return .deleted
        case "DRAFT": return .draft
        case "FLAGGED": return .flagged
        case "NEW": return .new
        case "OLD": return .old
        case "RECENT": return .recent
        case "SEEN": return .seen
        case "UNANSWERED": return .unanswered
        case "UNDELETED": return .undeleted
        case "UNDRAFT": return .undraft
        case "UNFLAGGED": return .unflagged
        case "UNSEEN": return .unseen
        case "BCC": return .bcc(try searchString())
        case "BODY": return .body(try searchString())
        case "CC": return .cc(try searchString())
        case "FROM": return .from(try searchString())
        case "SUBJECT": return .subject(try searchString())
        case "TEXT": return .text(try searchString())
        case "TO": return .to(try searchString())
        case "HEADER":
            try sp()
            let field = try astringText("header field name")
            return .header(field, try searchString())
        case "KEYWORD":
            try sp()
            return .keyword(try flagKeyword())
        case "UNKEYWORD":
            try sp()
            return .unkeyword(try flagKeyword())
        case "BEFORE": return .before(try searchDate())
        case "ON": return .on(try searchDate())
        case "SINCE": return .since(try searchDate())
        case "SENTBEFORE": return .sentBefore(try searchDate())
        case "SENTON": return .sentOn(try searchDate())
        case "SENTSINCE": return .sentSince(try searchDate())
        case "LARGER":
            try sp()
            return .larger(try number())
        case "SMALLER":
            try sp()
            return .smaller(try number())
        case "UID":
            try sp()
            return .uid(try sequenceSet())
        case "NOT":
            try sp()
            return .not(try searchKey())
        case "OR":
            try sp()
            let first = try searchKey()
            try sp()
            return .or(first, try searchKey())
        case "MODSEQ":
            try sp()
            return .modSeq(try searchModSequence())
        case "":
            throw failure(atEnd ? "missing search key" : "expected search key")
        default:
            let shown = name.count <= 32 ? name : String(name.prefix(32)) + "…"
            throw ParseFailure("unknown search key \(shown) at octet \(start + 1)")
        }
    }

    private mutating func searchString() throws(ParseFailure) -> String {
        try sp()
        return try astringText("search string")
    }

    private mutating func searchDate() throws(ParseFailure) -> IMAPDate {
        try sp()
        return try date()
    }

    /// `search-modsequence = "MODSEQ" [search-modseq-ext] SP mod-sequence-valzer`
    /// `search-modseq-ext = SP entry-name SP entry-type-req`
    /// `entry-name = DQUOTE "/flags/" attr-flag DQUOTE`
    /// `entry-type-req = "priv" / "shared" / "all"`
    mutating func searchModSequence() throws(ParseFailure) -> IMAPSearchModSeq {
        var entry: IMAPSearchModSeq.Entry?
        if peek(ASCII.quote) {
            let start = index
            let name = try quoted()
            let prefix = Array("/flags/".utf8)
            guard name.count > prefix.count, zip(name, prefix).allSatisfy({ ASCII.uppercased($0) == ASCII.uppercased($1) }) else {
                throw ParseFailure("MODSEQ entry name must be \"/flags/<flag>\" at octet \(start + 1)")
            }
            var flagParser = IMAPParser(IMAPCommandBytes(Array(name[prefix.count...])))
            guard let flag = try? flagParser.flag(), flagParser.atEnd else {
                throw ParseFailure("bad flag in MODSEQ entry name at octet \(start + 1)")
            }
            try sp()
            let typeStart = index
            let type = word().lowercased()
            guard ["priv", "shared", "all"].contains(type) else {
                throw ParseFailure("MODSEQ entry type must be priv, shared or all at octet \(typeStart + 1)")
            }
            entry = IMAPSearchModSeq.Entry(flag: flag, type: type)
            try sp()
        }
        return IMAPSearchModSeq(entry: entry, value: try modSequenceValzer())
    }
}
