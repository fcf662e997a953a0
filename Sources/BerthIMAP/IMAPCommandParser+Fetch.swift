extension IMAPParser {
    /// `fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
    ///          "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]` (RFC 3501, RFC 7162)
    mutating func fetch(uid: Bool) throws(ParseFailure) -> IMAPCommand.Kind {
        try sp()
        let set = try sequenceSet()
        try sp()
        var attributes: [IMAPFetchAttribute] = []
        if keyword("(") {
            while true {
                attributes.append(try fetchAtt())
                guard peek(ASCII.space) else { break }
                try sp()
            }
            try expect(UInt8(ascii: ")"), ") after fetch attributes")
        } else {
            let mark = index
            switch word() {
            case "ALL": attributes = IMAPFetchAttribute.all
            case "FAST": attributes = IMAPFetchAttribute.fast
            case "FULL": attributes = IMAPFetchAttribute.full
            default:
                index = mark
                attributes = [try fetchAtt()]
            }
        }
        var modifiers: [IMAPFetchModifier] = []
        if peek(ASCII.space) {
            try sp()
            modifiers = try fetchModifiers(uid: uid)
        }
        return .fetch(set, attributes, modifiers: modifiers, uid: uid)
    }

    /// `fetch-att = "ENVELOPE" / "FLAGS" / "INTERNALDATE" /
    ///   "RFC822" [".HEADER" / ".SIZE" / ".TEXT"] / "BODY" ["STRUCTURE"] / "UID" /
    ///   "BODY" section ["<" number "." nz-number ">"] /
    ///   "BODY.PEEK" section ["<" number "." nz-number ">"]`
    /// `fetch-att =/ fetch-mod-sequence` — `"MODSEQ"` (RFC 7162 §7)
    mutating func fetchAtt() throws(ParseFailure) -> IMAPFetchAttribute {
        let start = index
        let name = word()
        switch name {
        case "ENVELOPE": return .envelope
        case "FLAGS": return .flags
        case "INTERNALDATE": return .internalDate
        case "RFC822": return .rfc822
        case "RFC822.HEADER": return .rfc822Header
        case "RFC822.SIZE": return .rfc822Size
        case "RFC822.TEXT": return .rfc822Text
        case "BODYSTRUCTURE": return .bodyStructure
        case "UID": return .uid
        case "MODSEQ": return .modSeq
        case "BODY", "BODY.PEEK":
            guard peek(UInt8(ascii: "[")) else {
                guard name == "BODY" else { throw failure("expected [section] after BODY.PEEK") }
                return .body
            }
            let section = try section()
            return .bodySection(section, partial: try partial(), peek: name == "BODY.PEEK")
        case "":
            throw failure(atEnd ? "missing fetch attribute" : "expected fetch attribute")
        default:
            let shown = name.count <= 32 ? name : String(name.prefix(32)) + "…"
            throw ParseFailure("unknown fetch attribute \(shown) at octet \(start + 1)")
        }
    }

    /// `section = "[" [section-spec] "]"`
    /// `section-spec = section-msgtext / (section-part ["." section-text])`
    /// `section-part = nz-number *("." nz-number)`
    mutating func section() throws(ParseFailure) -> IMAPSection {
        try expect(UInt8(ascii: "["), "[")
        if keyword("]") { return .complete }
        var section = IMAPSection()
        if let byte = peek(), ASCII.isDigit(byte) {
            section.part.append(try nzNumber())
            while peek(UInt8(ascii: ".")), index + 1 < bytes.count, ASCII.isDigit(bytes[index + 1]) {
                index += 1
                section.part.append(try nzNumber())
            }
            if keyword(".") {
                section.text = try sectionText(afterPart: true)
            }
        } else {
            section.text = try sectionText(afterPart: false)
        }
        try expect(UInt8(ascii: "]"), "] after section")
        return section
    }

    /// `section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"`
    /// `section-text = section-msgtext / "MIME"`
    mutating func sectionText(afterPart: Bool) throws(ParseFailure) -> IMAPSectionText {
        let start = index
        switch word() {
        case "HEADER": return .header
        case "TEXT": return .text
        case "MIME" where afterPart: return .mime
        case "HEADER.FIELDS":
            try sp()
            return .headerFields(try headerList())
        case "HEADER.FIELDS.NOT":
            try sp()
            return .headerFieldsNot(try headerList())
        default:
            throw ParseFailure("bad section at octet \(start + 1)")
        }
    }

    /// `header-list = "(" header-fld-name *(SP header-fld-name) ")"`; `header-fld-name = astring`
    mutating func headerList() throws(ParseFailure) -> [String] {
        try expect(UInt8(ascii: "("), "( before header field names")
        var names: [String] = []
        while true {
            names.append(try astringText("header field name").uppercased())
            guard peek(ASCII.space) else { break }
            try sp()
        }
        try expect(UInt8(ascii: ")"), ") after header field names")
        return names
    }

    /// `["<" number "." nz-number ">"]`
    mutating func partial() throws(ParseFailure) -> IMAPPartial? {
        guard keyword("<") else { return nil }
        let offset = try number()
        try expect(UInt8(ascii: "."), ". in partial range")
        let length = try nzNumber()
        try expect(UInt8(ascii: ">"), "> after partial range")
        return IMAPPartial(offset: offset, length: length)
    }

    /// `fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")"` (RFC 4466 §2.4)
    /// `fetch-modifier =/ chgsince-fetch-mod / rexpunges-fetch-mod` (RFC 7162 §7)
    /// `chgsince-fetch-mod = "CHANGEDSINCE" SP mod-sequence-value`; `rexpunges-fetch-mod = "VANISHED"`
    mutating func fetchModifiers(uid: Bool) throws(ParseFailure) -> [IMAPFetchModifier] {
        try expect(UInt8(ascii: "("), "( before FETCH modifiers")
        var modifiers: [IMAPFetchModifier] = []
        while true {
            let start = index
            switch word() {
            case "CHANGEDSINCE":
                try sp()
                modifiers.append(.changedSince(try modSequenceValue()))
            case "VANISHED":
                // RFC 7162 §3.2.6: only in UID FETCH, and only with CHANGEDSINCE.
                guard uid else { throw ParseFailure("VANISHED is only allowed in UID FETCH at octet \(start + 1)") }
                modifiers.append(.vanished)
            default:
                throw ParseFailure("unknown FETCH modifier at octet \(start + 1)")
            }
            guard peek(ASCII.space) else { break }
            try sp()
        }
        try expect(UInt8(ascii: ")"), ") after FETCH modifiers")
        if modifiers.contains(.vanished) && !modifiers.contains(where: { if case .changedSince = $0 { true } else { false } }) {
            throw ParseFailure("VANISHED needs CHANGEDSINCE (RFC 7162 section 3.2.6)")
        }
        return modifiers
    }
}
