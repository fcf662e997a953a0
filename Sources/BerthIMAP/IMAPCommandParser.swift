/// Turns one framed command into an `IMAPCommand`. Pure; never traps: every input is a
/// command or an `IMAPParseError`.
public enum IMAPCommandParser {
    /// `command = tag SP (command-any / command-auth / command-nonauth / command-select) CRLF`
    public static func parse(_ command: IMAPCommandBytes) -> Result<IMAPCommand, IMAPParseError> {
        var parser = IMAPParser(command)
        let tag: String
        do throws(ParseFailure) {
            tag = try parser.tag()
        } catch {
            return .failure(IMAPParseError(tag: nil, reason: error.reason))
        }
        do throws(ParseFailure) {
            guard !parser.atEnd else { throw ParseFailure("missing command") }
            try parser.sp()
            let kind = try parser.commandBody()
            try parser.end()
            return .success(IMAPCommand(tag: tag, kind))
        } catch {
            return .failure(IMAPParseError(tag: tag, reason: error.reason))
        }
    }

    /// A command given as bytes (literals inline), as in tests or without the framer.
    public static func parse(_ bytes: some Collection<UInt8>) -> Result<IMAPCommand, IMAPParseError> {
        parse(IMAPCommandBytes(Array(bytes)))
    }

    /// RFC 2177 §3: the line that ends IDLE is `DONE`, in any case.
    public static func isIdleDone(_ line: IMAPCommandBytes) -> Bool {
        line.bytes.count == 4 && line.bytes.map(ASCII.uppercased).elementsEqual("DONE".utf8)
    }

    /// A client's line during AUTHENTICATE (RFC 3501 §6.2.2): base64 text, or `*` to
    /// cancel (answer `BAD`).
    public static func parseAuthenticationResponse(_ line: IMAPCommandBytes) -> Result<IMAPAuthenticationResponse, IMAPParseError> {
        if line.bytes == [UInt8(ascii: "*")] { return .success(.cancel) }
        guard IMAPParser.isBase64(line.bytes[...]) else {
            return .failure(IMAPParseError(tag: nil, reason: "authentication response is not base64"))
        }
        return .success(.response(String(decoding: line.bytes, as: UTF8.self)))
    }
}

/// What the client answered to an AUTHENTICATE challenge.
public enum IMAPAuthenticationResponse: Sendable, Hashable {
    /// Base64 text as sent (may be empty).
    case response(String)
    /// `*`
    case cancel
}

extension IMAPParser {
    /// `command-any = "CAPABILITY" / "LOGOUT" / "NOOP" / x-command`
    /// `command-auth = append / create / delete / examine / list / lsub / rename / select /
    ///                 status / subscribe / unsubscribe`
    /// `command-nonauth = login / authenticate / "STARTTLS"`
    /// `command-select = "CHECK" / "CLOSE" / "EXPUNGE" / copy / fetch / store / uid / search`
    mutating func commandBody() throws(ParseFailure) -> IMAPCommand.Kind {
        let start = index
        guard let first = peek(), IMAPGrammar.isAtomChar(first) else { throw failure("missing command") }
        let name = try atom("command").uppercased()
        switch name {
        case "CAPABILITY": return .capability
        case "NOOP": return .noop
        case "LOGOUT": return .logout
        case "STARTTLS": return .startTLS
        case "CHECK": return .check
        case "CLOSE": return .close
        case "EXPUNGE": return .expunge
        case "UNSELECT": return .unselect
        case "IDLE": return .idle
        case "NAMESPACE": return .namespace
        case "AUTHENTICATE": return try authenticate()
        case "LOGIN": return try login()
        case "SELECT":
            try sp()
            return .select(try mailbox(), parameters: try selectParams())
        case "EXAMINE":
            try sp()
            return .examine(try mailbox(), parameters: try selectParams())
        case "CREATE":
            try sp()
            return .create(try mailbox())
        case "DELETE":
            try sp()
            return .delete(try mailbox())
        case "SUBSCRIBE":
            try sp()
            return .subscribe(try mailbox())
        case "UNSUBSCRIBE":
            try sp()
            return .unsubscribe(try mailbox())
        case "RENAME": return try rename()
        case "LIST": return try list()
        case "LSUB": return try lsub()
        case "STATUS": return try status()
        case "APPEND": return try append()
        case "ENABLE": return try enable()
        case "ID": return try id()
        case "GETQUOTA":
            try sp()
            return .getQuota(root: try astringText("quota root"))
        case "GETQUOTAROOT":
            try sp()
            return .getQuotaRoot(try mailbox())
        case "SETQUOTA": return try setQuota()
        case "SEARCH": return try search(uid: false)
        case "FETCH": return try fetch(uid: false)
        case "STORE": return try store(uid: false)
        case "COPY": return try copy(uid: false)
        case "MOVE": return try move(uid: false)
        case "UID": return try uid()
        default:
            let shown = name.count <= 32 ? name : String(name.prefix(32)) + "…"
            throw ParseFailure("unknown command \(shown) at octet \(start + 1)")
        }
    }

    /// `uid = "UID" SP (copy / fetch / search / store / move / uid-expunge)` (RFC 3501,
    /// RFC 6851 §3.3); `uid-expunge = "EXPUNGE" SP sequence-set` (RFC 4315 §4)
    mutating func uid() throws(ParseFailure) -> IMAPCommand.Kind {
        try sp()
        let start = index
        let name = try atom("command after UID").uppercased()
        switch name {
        case "COPY": return try copy(uid: true)
        case "MOVE": return try move(uid: true)
        case "FETCH": return try fetch(uid: true)
        case "SEARCH": return try search(uid: true)
        case "STORE": return try store(uid: true)
        case "EXPUNGE":
            try sp()
            return .uidExpunge(try sequenceSet())
        default:
            let shown = name.count <= 32 ? name : String(name.prefix(32)) + "…"
            throw ParseFailure("unknown command UID \(shown) at octet \(start + 1)")
        }
    }

    /// `authenticate = "AUTHENTICATE" SP auth-type [SP (base64 / "=")]` (RFC 4959 §7)
    /// `auth-type = atom`
    mutating func authenticate() throws(ParseFailure) -> IMAPCommand.Kind {
        try sp()
        let mechanism = try atom("SASL mechanism").uppercased()
        guard peek(ASCII.space) else { return .authenticate(mechanism: mechanism, initialResponse: nil) }
        try sp()
        if bytes.count - index == 1 && peek(UInt8(ascii: "=")) {
            index += 1
            return .authenticate(mechanism: mechanism, initialResponse: "")
        }
        return .authenticate(mechanism: mechanism, initialResponse: try base64())
    }

    /// `base64 = *(4base64-char) [base64-terminal]`
    /// `base64-char = ALPHA / DIGIT / "+" / "/"`
    /// `base64-terminal = (2base64-char "==") / (3base64-char "=")`
    mutating func base64() throws(ParseFailure) -> String {
        let start = index
        while let byte = peek(), Self.isBase64Char(byte) || byte == UInt8(ascii: "=") { index += 1 }
        let text = bytes[start..<index]
        guard !text.isEmpty, Self.isBase64(text) else { throw ParseFailure("bad base64 at octet \(start + 1)") }
        return String(decoding: text, as: UTF8.self)
    }

    static func isBase64Char(_ byte: UInt8) -> Bool {
        ASCII.isDigit(byte) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A) || byte == UInt8(ascii: "+")
            || byte == UInt8(ascii: "/")
    }

    static func isBase64(_ text: ArraySlice<UInt8>) -> Bool {
        guard text.count % 4 == 0 else { return false }
        let padding = text.reversed().prefix { $0 == UInt8(ascii: "=") }.count
        return padding <= 2 && text.dropLast(padding).allSatisfy(isBase64Char)
    }

    /// `login = "LOGIN" SP userid SP password`; `userid = astring`; `password = astring`
    mutating func login() throws(ParseFailure) -> IMAPCommand.Kind {
        try sp()
        let user = try astringText("user name")
        try sp()
        let password = try astringText("password")
        return .login(user: user, password: password)
    }

    /// `select-params = SP "(" select-param *(SP select-param) ")"` (RFC 4466 §2.1)
    /// `select-param =/ "CONDSTORE"` (RFC 7162 §3.1.8)
    /// `select-param =/ "QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids]
    ///                  [SP seq-match-data] ")"` (RFC 7162 §3.2.5)
    mutating func selectParams() throws(ParseFailure) -> [IMAPSelectParameter] {
        guard peek(ASCII.space) else { return [] }
        try sp()
        try expect(UInt8(ascii: "("), "( before SELECT parameters")
        var parameters: [IMAPSelectParameter] = []
        while true {
            let start = index
            switch word() {
            case "CONDSTORE":
                parameters.append(.condStore)
            case "QRESYNC":
                try sp()
                parameters.append(.qresync(try qresyncParameter()))
            case "":
                throw failure("expected SELECT parameter")
            default:
                throw ParseFailure("unknown SELECT parameter at octet \(start + 1)")
            }
            guard peek(ASCII.space) else { break }
            try sp()
        }
        try expect(UInt8(ascii: ")"), ") after SELECT parameters")
        return parameters
    }

    /// `"(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"`
    /// `uidvalidity = nz-number`; `known-uids = sequence-set`
    /// `seq-match-data = "(" known-sequence-set SP known-uid-set ")"`
    mutating func qresyncParameter() throws(ParseFailure) -> IMAPQResyncParameter {
        try expect(UInt8(ascii: "("), "( after QRESYNC")
        let uidValidity = try nzNumber()
        try sp()
        var parameter = IMAPQResyncParameter(uidValidity: uidValidity, modSeq: try modSequenceValue())
        if peek(ASCII.space) {
            try sp()
            if !peek(UInt8(ascii: "(")) {
                parameter.knownUIDs = try sequenceSet()
                if peek(ASCII.space) {
                    try sp()
                    guard peek(UInt8(ascii: "(")) else { throw failure("expected QRESYNC sequence match data") }
                }
            }
            if keyword("(") {
                let sequenceNumbers = try sequenceSet()
                try sp()
                let uids = try sequenceSet()
                try expect(UInt8(ascii: ")"), ") after QRESYNC sequence match data")
                parameter.sequenceMatch = .init(sequenceNumbers: sequenceNumbers, uids: uids)
            }
        }
        try expect(UInt8(ascii: ")"), ") after QRESYNC parameters")
        return parameter
    }

    /// `rename = "RENAME" SP mailbox SP mailbox`
    mutating func rename() throws(ParseFailure) -> IMAPCommand.Kind {
        try sp()
        let from = try mailbox()
        try sp()
        return .rename(from: from, to: try mailbox())
    }

    /// `list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]`
    /// (RFC 5258 §6); `mbox-or-pat = list-mailbox / patterns`;
    /// `patterns = "(" list-mailbox *(SP list-mailbox) ")"`
    mutating func list() throws(ParseFailure) -> IMAPCommand.Kind {
        try sp()
        var selectOptions: [IMAPListSelectOption] = []
        if peek(UInt8(ascii: "(")) {
            selectOptions = try listSelectOpts()
            try sp()
        }
        let reference = try mailbox()
        try sp()
        var patterns: [String] = []
        if keyword("(") {
            while true {
                patterns.append(try listMailbox())
                guard peek(ASCII.space) else { break }
                try sp()
            }
            try expect(UInt8(ascii: ")"), ") after mailbox patterns")
        } else {
            patterns = [try listMailbox()]
        }
        var returnOptions: [IMAPListReturnOption] = []
        if peek(ASCII.space) {
            try sp()
            returnOptions = try listReturnOpts()
        }
        return .list(IMAPListCommand(selectOptions: selectOptions, reference: reference, patterns: patterns,
                                     returnOptions: returnOptions))
    }

    /// `list-select-opts = "(" [(*(list-select-opt SP) list-select-base-opt
    ///                     *(SP list-select-opt)) / (list-select-independent-opt
    ///                     *(SP list-select-independent-opt))] ")"`
    /// `list-select-base-opt = "SUBSCRIBED" / "SPECIAL-USE"`; `list-select-mod-opt =
    /// "RECURSIVEMATCH"`; `list-select-independent-opt = "REMOTE"`
    mutating func listSelectOpts() throws(ParseFailure) -> [IMAPListSelectOption] {
        try expect(UInt8(ascii: "("), "(")
        var options: [IMAPListSelectOption] = []
        if !keyword(")") {
            while true {
                let start = index
                let name = word()
                // RFC 5258 §3: an unknown selection option is an error.
                guard let option = IMAPListSelectOption(rawValue: name) else {
                    throw ParseFailure("unknown LIST selection option at octet \(start + 1)")
                }
                options.append(option)
                guard peek(ASCII.space) else { break }
                try sp()
            }
            try expect(UInt8(ascii: ")"), ") after LIST selection options")
        }
        if options.contains(.recursiveMatch) && !options.contains(.subscribed) && !options.contains(.specialUse) {
            throw ParseFailure("RECURSIVEMATCH needs SUBSCRIBED or SPECIAL-USE (RFC 5258 section 3)")
        }
        return options
    }

    /// `list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"`
    /// `return-option = "SUBSCRIBED" / "CHILDREN" / "SPECIAL-USE" /
    ///                  "STATUS" SP "(" status-att *(SP status-att) ")"` (RFC 5819)
    mutating func listReturnOpts() throws(ParseFailure) -> [IMAPListReturnOption] {
        guard word() == "RETURN" else { throw failure("expected RETURN") }
        try sp()
        try expect(UInt8(ascii: "("), "( after RETURN")
        var options: [IMAPListReturnOption] = []
        if keyword(")") { return options }
        while true {
            let start = index
            switch word() {
            case "SUBSCRIBED": options.append(.subscribed)
            case "CHILDREN": options.append(.children)
            case "SPECIAL-USE": options.append(.specialUse)
            case "STATUS":
                try sp()
                options.append(.status(try statusAttList()))
            default: throw ParseFailure("unknown LIST return option at octet \(start + 1)")
            }
            guard peek(ASCII.space) else { break }
            try sp()
        }
        try expect(UInt8(ascii: ")"), ") after LIST return options")
        return options
    }

    /// `lsub = "LSUB" SP mailbox SP list-mailbox`
    mutating func lsub() throws(ParseFailure) -> IMAPCommand.Kind {
        try sp()
        let reference = try mailbox()
        try sp()
        return .lsub(reference: reference, pattern: try listMailbox())
    }

    /// `status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"`
    mutating func status() throws(ParseFailure) -> IMAPCommand.Kind {
        try sp()
        let name = try mailbox()
        try sp()
        return .status(name, try statusAttList())
    }

    /// `"(" status-att *(SP status-att) ")"`
    /// `status-att = "MESSAGES" / "RECENT" / "UIDNEXT" / "UIDVALIDITY" / "UNSEEN"`
    /// `status-att =/ "HIGHESTMODSEQ"` (RFC 7162), `"SIZE"` (RFC 8438), `"DELETED"` (RFC 9208)
    mutating func statusAttList() throws(ParseFailure) -> [IMAPStatusAttribute] {
        try expect(UInt8(ascii: "("), "( before status attributes")
        var attributes: [IMAPStatusAttribute] = []
        while true {
            let start = index
            guard let attribute = IMAPStatusAttribute(rawValue: word()) else {
                throw ParseFailure("unknown status attribute at octet \(start + 1)")
            }
            attributes.append(attribute)
            guard peek(ASCII.space) else { break }
            try sp()
        }
        try expect(UInt8(ascii: ")"), ") after status attributes")
        return attributes
    }

    /// `append = "APPEND" SP mailbox [SP flag-list] [SP date-time] SP literal`
    mutating func append() throws(ParseFailure) -> IMAPCommand.Kind {
        try sp()
        let name = try mailbox()
        try sp()
        var flags: [IMAPFlag] = []
        if peek(UInt8(ascii: "(")) {
            flags = try flagList()
            try sp()
        }
        var date: IMAPDateTime?
        if peek(ASCII.quote) {
            date = try dateTime()
            try sp()
        }
        guard peek(UInt8(ascii: "{")) else { throw failure("expected message literal") }
        let message: IMAPAppendMessage
        switch try literal() {
        case .bytes(let bytes): message = .inline(bytes)
        case .streamed(let size): message = .streamed(size: size)
        }
        return .append(IMAPAppendCommand(mailbox: name, flags: flags, date: date, message: message))
    }

    /// `enable = "ENABLE" 1*(SP capability)` (RFC 5161 §4); `capability = atom`
    mutating func enable() throws(ParseFailure) -> IMAPCommand.Kind {
        var capabilities: [String] = []
        repeat {
            try sp()
            capabilities.append(try atom("capability").uppercased())
        } while peek(ASCII.space)
        return .enable(capabilities)
    }

    /// `id = "ID" SP id-params-list` (RFC 2971 §4)
    /// `id-params-list = "(" #(string SP nstring) ")" / nil`
    mutating func id() throws(ParseFailure) -> IMAPCommand.Kind {
        try sp()
        if try nilKeyword() { return .id(nil) }
        try expect(UInt8(ascii: "("), "( or NIL")
        var fields: [IMAPIDField] = []
        if keyword(")") { return .id(fields) }
        while true {
            let name = try stringText("ID field name")
            try sp()
            fields.append(IMAPIDField(name, try nstringText()))
            guard peek(ASCII.space) else { break }
            try sp()
        }
        try expect(UInt8(ascii: ")"), ") after ID fields")
        return .id(fields)
    }

    /// `setquota = "SETQUOTA" SP quota-root-name SP setquota-list` (RFC 9208 §4.1.3)
    /// `setquota-list = "(" [setquota-resource *(SP setquota-resource)] ")"`
    /// `setquota-resource = resource-name SP resource-limit`; `resource-limit = number64`
    mutating func setQuota() throws(ParseFailure) -> IMAPCommand.Kind {
        try sp()
        let root = try astringText("quota root")
        try sp()
        try expect(UInt8(ascii: "("), "( before quota limits")
        var limits: [IMAPQuotaLimit] = []
        if !keyword(")") {
            while true {
                let resource = try atom("resource name").uppercased()
                try sp()
                limits.append(IMAPQuotaLimit(resource: resource, limit: try number64()))
                guard peek(ASCII.space) else { break }
                try sp()
            }
            try expect(UInt8(ascii: ")"), ") after quota limits")
        }
        return .setQuota(root: root, limits: limits)
    }

    /// `store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags`
    /// `store-modifiers = SP "(" store-modifier *(SP store-modifier) ")"` (RFC 7162)
    /// `store-modifier = "UNCHANGEDSINCE" SP mod-sequence-valzer`
    mutating func store(uid: Bool) throws(ParseFailure) -> IMAPCommand.Kind {
        try sp()
        let set = try sequenceSet()
        try sp()
        var unchangedSince: UInt64?
        if keyword("(") {
            while true {
                let start = index
                guard word() == "UNCHANGEDSINCE" else { throw ParseFailure("unknown STORE modifier at octet \(start + 1)") }
                try sp()
                unchangedSince = try modSequenceValzer()
                guard peek(ASCII.space) else { break }
                try sp()
            }
            try expect(UInt8(ascii: ")"), ") after STORE modifiers")
            try sp()
        }
        return .store(set, try storeAttFlags(), unchangedSince: unchangedSince, uid: uid)
    }

    /// `store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))`
    mutating func storeAttFlags() throws(ParseFailure) -> IMAPStoreAction {
        let operation: IMAPStoreAction.Operation
        if keyword("+") {
            operation = .add
        } else if keyword("-") {
            operation = .remove
        } else {
            operation = .replace
        }
        let start = index
        let silent: Bool
        switch word() {
        case "FLAGS": silent = false
        case "FLAGS.SILENT": silent = true
        default: throw ParseFailure("expected FLAGS, +FLAGS or -FLAGS at octet \(start + 1)")
        }
        try sp()
        if peek(UInt8(ascii: "(")) {
            return IMAPStoreAction(operation, silent: silent, flags: try flagList())
        }
        var flags: [IMAPFlag] = []
        while true {
            flags.append(try flag())
            guard peek(ASCII.space) else { break }
            try sp()
        }
        return IMAPStoreAction(operation, silent: silent, flags: flags)
    }

    /// `copy = "COPY" SP sequence-set SP mailbox`
    mutating func copy(uid: Bool) throws(ParseFailure) -> IMAPCommand.Kind {
        try sp()
        let set = try sequenceSet()
        try sp()
        return .copy(set, try mailbox(), uid: uid)
    }

    /// `move = "MOVE" SP sequence-set SP mailbox` (RFC 6851 §3.3)
    mutating func move(uid: Bool) throws(ParseFailure) -> IMAPCommand.Kind {
        try sp()
        let set = try sequenceSet()
        try sp()
        return .move(set, try mailbox(), uid: uid)
    }
}
