/// Writes `IMAPResponse`s as bytes (RFC 3501 §7, §9). Separate from the parser; the NIO
/// layer copies `bytes` into its buffer (or calls `take()`).
public struct IMAPResponseEncoder: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    /// The bytes written so far, leaving the encoder empty.
    public mutating func take() -> [UInt8] {
        defer { bytes = [] }
        return bytes
    }

    public static func encode(_ response: IMAPResponse) -> [UInt8] {
        var encoder = IMAPResponseEncoder()
        encoder.encode(response)
        return encoder.bytes
    }

    /// `response-done = response-tagged / response-fatal`; `response-data = "*" SP (...) CRLF`;
    /// `continue-req = "+" SP (resp-text / base64) CRLF`
    public mutating func encode(_ response: IMAPResponse) {
        switch response {
        case .tagged(let tag, let status, let code, let text):
            writeRaw(tag)
            writeRaw(" " + status.rawValue)
            writeRespText(code: code, text: text)
        case .untagged(let status, let code, let text):
            writeRaw("* " + status.rawValue)
            writeRespText(code: code, text: text)
        case .data(let data):
            writeRaw("* ")
            write(data)
        case .continuation(let text):
            writeRaw("+ ")
            writeText(text)
        }
        writeRaw("\r\n")
    }

    // MARK: - resp-text

    /// `resp-text = ["[" resp-text-code "]" SP] text`
    mutating func writeRespText(code: IMAPResponseCode?, text: String) {
        if let code {
            writeRaw(" [")
            write(code)
            writeRaw("]")
        }
        if !text.isEmpty {
            writeRaw(" ")
            writeText(text)
        }
    }

    /// `text = 1*TEXT-CHAR`: anything else (CR, LF, NUL, 8-bit) is written "?".
    mutating func writeText(_ text: String) {
        for byte in text.utf8 {
            bytes.append(byte >= 0x20 && byte < 0x7F ? byte : UInt8(ascii: "?"))
        }
    }

    /// `resp-text-code`
    mutating func write(_ code: IMAPResponseCode) {
        switch code {
        case .alert: writeRaw("ALERT")
        case .badCharset(let charsets):
            writeRaw("BADCHARSET")
            if !charsets.isEmpty {
                writeRaw(" ")
                writeList(charsets) { $0.writeAString($1) }
            }
        case .capability(let capabilities):
            writeRaw("CAPABILITY")
            for capability in capabilities { writeRaw(" " + capability) }
        case .parse: writeRaw("PARSE")
        case .permanentFlags(let flags):
            writeRaw("PERMANENTFLAGS ")
            writeFlagList(flags)
        case .readOnly: writeRaw("READ-ONLY")
        case .readWrite: writeRaw("READ-WRITE")
        case .tryCreate: writeRaw("TRYCREATE")
        case .uidNext(let n): writeRaw("UIDNEXT \(n)")
        case .uidValidity(let n): writeRaw("UIDVALIDITY \(n)")
        case .unseen(let n): writeRaw("UNSEEN \(n)")
        case .appendUID(let validity, let uids):
            writeRaw("APPENDUID \(validity) ")
            write(uids)
        case .copyUID(let validity, let source, let destination):
            writeRaw("COPYUID \(validity) ")
            write(source)
            writeRaw(" ")
            write(destination)
        case .uidNotSticky: writeRaw("UIDNOTSTICKY")
        case .highestModSeq(let n): writeRaw("HIGHESTMODSEQ \(n)")
        case .noModSeq: writeRaw("NOMODSEQ")
        case .modified(let set):
            writeRaw("MODIFIED ")
            write(set)
        case .closed: writeRaw("CLOSED")
        case .tooBig: writeRaw("TOOBIG")
        case .overQuota: writeRaw("OVERQUOTA")
        case .limit: writeRaw("LIMIT")
        case .alreadyExists: writeRaw("ALREADYEXISTS")
        case .nonExistent: writeRaw("NONEXISTENT")
        case .authenticationFailed: writeRaw("AUTHENTICATIONFAILED")
        case .authorizationFailed: writeRaw("AUTHORIZATIONFAILED")
        case .unavailable: writeRaw("UNAVAILABLE")
        case .expired: writeRaw("EXPIRED")
        case .privacyRequired: writeRaw("PRIVACYREQUIRED")
        case .contactAdmin: writeRaw("CONTACTADMIN")
        case .noPerm: writeRaw("NOPERM")
        case .inUse: writeRaw("INUSE")
        case .expungeIssued: writeRaw("EXPUNGEISSUED")
        case .corruption: writeRaw("CORRUPTION")
        case .serverBug: writeRaw("SERVERBUG")
        case .clientBug: writeRaw("CLIENTBUG")
        case .cannot: writeRaw("CANNOT")
        case .notSaved: writeRaw("NOTSAVED")
        case .hasChildren: writeRaw("HASCHILDREN")
        case .other(let name, let text):
            writeRaw(name)
            if let text {
                writeRaw(" ")
                for byte in text.utf8 {
                    bytes.append(IMAPGrammar.isTextChar(byte) && byte != UInt8(ascii: "]") ? byte : UInt8(ascii: "?"))
                }
            }
        }
    }

    // MARK: - Data

    mutating func write(_ data: IMAPResponseData) {
        switch data {
        case .capability(let capabilities):
            // `capability-data = "CAPABILITY" *(SP capability) SP "IMAP4rev1" *(SP capability)`
            writeRaw("CAPABILITY")
            for capability in capabilities { writeRaw(" " + capability) }
        case .list(let item):
            writeRaw("LIST ")
            write(item)
        case .lsub(let item):
            writeRaw("LSUB ")
            write(item)
        case .status(let mailbox, let values):
            // `"STATUS" SP mailbox SP "(" [status-att-list] ")"`
            writeRaw("STATUS ")
            writeMailbox(mailbox)
            writeRaw(" ")
            writeList(values) { $0.writeRaw("\($1.attribute.rawValue) \($1.value)") }
        case .search(let numbers, let modSeq):
            // `mailbox-data =/ "SEARCH" *(SP nz-number) [SP search-sort-mod-seq]`
            writeRaw("SEARCH")
            for number in numbers { writeRaw(" \(number)") }
            if let modSeq { writeRaw(" (MODSEQ \(modSeq))") }
        case .esearch(let response):
            write(response)
        case .flags(let flags):
            writeRaw("FLAGS ")
            writeFlagList(flags)
        case .exists(let n): writeRaw("\(n) EXISTS")
        case .recent(let n): writeRaw("\(n) RECENT")
        case .expunge(let n): writeRaw("\(n) EXPUNGE")
        case .vanished(let earlier, let uids):
            // `expunged-resp = "VANISHED" [SP "(EARLIER)"] SP known-uids`
            writeRaw(earlier ? "VANISHED (EARLIER) " : "VANISHED ")
            write(uids)
        case .fetch(let number, let items):
            // `message-data = nz-number SP ("EXPUNGE" / ("FETCH" SP msg-att))`
            // `msg-att = "(" (msg-att-dynamic / msg-att-static) *(SP ...) ")"`
            writeRaw("\(number) FETCH ")
            writeList(items) { $0.write($1) }
        case .namespace(let personal, let otherUsers, let shared):
            // `Namespace-Response = "NAMESPACE" SP Namespace SP Namespace SP Namespace`
            writeRaw("NAMESPACE ")
            writeNamespaces(personal)
            writeRaw(" ")
            writeNamespaces(otherUsers)
            writeRaw(" ")
            writeNamespaces(shared)
        case .id(let fields):
            // `id_response ::= "ID" SPACE id_params_list`
            writeRaw("ID ")
            guard let fields, !fields.isEmpty else {
                writeRaw("NIL")
                return
            }
            writeList(fields) { encoder, field in
                encoder.writeString(field.name)
                encoder.writeRaw(" ")
                encoder.writeNString(field.value)
            }
        case .enabled(let capabilities):
            writeRaw("ENABLED")
            for capability in capabilities { writeRaw(" " + capability) }
        case .quota(let root, let resources):
            // `quota-response = "QUOTA" SP quota-root-name SP quota-list`
            writeRaw("QUOTA ")
            writeAString(root)
            writeRaw(" ")
            writeList(resources) { $0.writeRaw("\($1.name) \($1.usage) \($1.limit)") }
        case .quotaRoot(let mailbox, let roots):
            // `quotaroot-response = "QUOTAROOT" SP mailbox *(SP quota-root-name)`
            writeRaw("QUOTAROOT ")
            writeMailbox(mailbox)
            for root in roots {
                writeRaw(" ")
                writeAString(root)
            }
        }
    }

    /// `mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox
    /// [SP mbox-list-extended]`; `mbox-list-extended = "(" [mbox-list-extended-item
    /// *(SP mbox-list-extended-item)] ")"`; `childinfo-extended-item = "CHILDINFO" SP "("
    /// list-select-base-opt-quoted *(SP list-select-base-opt-quoted) ")"` (RFC 5258 §9)
    mutating func write(_ item: IMAPListItem) {
        writeList(item.attributes) { $0.writeRaw($1) }
        writeRaw(" ")
        writeDelimiter(item.delimiter)
        writeRaw(" ")
        writeMailbox(item.mailbox)
        if !item.childInfo.isEmpty {
            writeRaw(" (\"CHILDINFO\" ")
            writeList(item.childInfo) { $0.writeQuoted(Array($1.utf8)) }
            writeRaw(")")
        }
    }

    mutating func writeDelimiter(_ delimiter: Character?) {
        guard let delimiter, delimiter.isASCII, let byte = delimiter.asciiValue, IMAPGrammar.isTextChar(byte) else {
            writeRaw("NIL")
            return
        }
        writeQuoted(Array(String(delimiter).utf8))
    }

    /// `esearch-response = "ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)`
    /// `search-correlator = SP "(" "TAG" SP tag-string ")"`
    mutating func write(_ response: IMAPESearchResponse) {
        writeRaw("ESEARCH")
        if let tag = response.tag {
            writeRaw(" (TAG ")
            writeString(tag)
            writeRaw(")")
        }
        if response.uid { writeRaw(" UID") }
        if let min = response.min { writeRaw(" MIN \(min)") }
        if let max = response.max { writeRaw(" MAX \(max)") }
        if let all = response.all {
            writeRaw(" ALL ")
            write(all)
        }
        if let count = response.count { writeRaw(" COUNT \(count)") }
        if let modSeq = response.modSeq { writeRaw(" MODSEQ \(modSeq)") }
    }

    /// `Namespace = nil / "(" 1*( "(" string SP (DQUOTE QUOTED-CHAR DQUOTE / nil) ")" ) ")"`
    mutating func writeNamespaces(_ namespaces: [IMAPNamespace]) {
        guard !namespaces.isEmpty else {
            writeRaw("NIL")
            return
        }
        writeRaw("(")
        for namespace in namespaces {
            writeRaw("(")
            writeString(ModifiedUTF7.encode(namespace.prefix))
            writeRaw(" ")
            writeDelimiter(namespace.delimiter)
            writeRaw(")")
        }
        writeRaw(")")
    }

    // MARK: - FETCH items

    /// `msg-att-dynamic = "FLAGS" SP "(" [flag-fetch *(SP flag-fetch)] ")"`
    /// `msg-att-static = "ENVELOPE" SP envelope / "INTERNALDATE" SP date-time /
    ///   "RFC822" [".HEADER" / ".TEXT"] SP nstring / "RFC822.SIZE" SP number /
    ///   "BODY" ["STRUCTURE"] SP body / "BODY" section ["<" number ">"] SP nstring /
    ///   "UID" SP uniqueid`
    mutating func write(_ item: IMAPFetchItem) {
        switch item {
        case .flags(let flags):
            writeRaw("FLAGS ")
            writeFlagList(flags)
        case .internalDate(let date):
            writeRaw("INTERNALDATE \"\(date)\"")
        case .rfc822Size(let size): writeRaw("RFC822.SIZE \(size)")
        case .uid(let uid): writeRaw("UID \(uid)")
        case .modSeq(let modSeq): writeRaw("MODSEQ (\(modSeq))")
        case .envelope(let envelope):
            writeRaw("ENVELOPE ")
            write(envelope)
        case .body(let body):
            writeRaw("BODY ")
            write(body, extensions: false)
        case .bodyStructure(let body):
            writeRaw("BODYSTRUCTURE ")
            write(body, extensions: true)
        case .bodySection(let section, let origin, let data):
            writeRaw("BODY")
            write(section)
            if let origin { writeRaw("<\(origin)>") }
            writeRaw(" ")
            writeNLiteral(data)
        case .rfc822(let data):
            writeRaw("RFC822 ")
            writeNLiteral(data)
        case .rfc822Header(let data):
            writeRaw("RFC822.HEADER ")
            writeNLiteral(data)
        case .rfc822Text(let data):
            writeRaw("RFC822.TEXT ")
            writeNLiteral(data)
        }
    }

    /// `section = "[" [section-spec] "]"`
    mutating func write(_ section: IMAPSection) {
        writeRaw("[")
        writeRaw(section.part.map(String.init).joined(separator: "."))
        if let text = section.text {
            if !section.part.isEmpty { writeRaw(".") }
            switch text {
            case .header: writeRaw("HEADER")
            case .text: writeRaw("TEXT")
            case .mime: writeRaw("MIME")
            case .headerFields(let names):
                writeRaw("HEADER.FIELDS ")
                writeList(names) { $0.writeAString($1) }
            case .headerFieldsNot(let names):
                writeRaw("HEADER.FIELDS.NOT ")
                writeList(names) { $0.writeAString($1) }
            }
        }
        writeRaw("]")
    }

    /// `envelope = "(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to SP
    ///             env-to SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"`
    mutating func write(_ envelope: IMAPEnvelope) {
        writeRaw("(")
        writeNString(envelope.date)
        writeRaw(" ")
        writeNString(envelope.subject)
        for addresses in [envelope.from, envelope.sender, envelope.replyTo, envelope.to, envelope.cc, envelope.bcc] {
            writeRaw(" ")
            writeAddresses(addresses)
        }
        writeRaw(" ")
        writeNString(envelope.inReplyTo)
        writeRaw(" ")
        writeNString(envelope.messageID)
        writeRaw(")")
    }

    /// `env-from = "(" 1*address ")" / nil` — addresses follow each other with no space.
    mutating func writeAddresses(_ addresses: [IMAPAddress]) {
        guard !addresses.isEmpty else {
            writeRaw("NIL")
            return
        }
        writeRaw("(")
        for address in addresses {
            // `address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"`
            writeRaw("(")
            writeNString(address.name)
            writeRaw(" ")
            writeNString(address.adl)
            writeRaw(" ")
            writeNString(address.mailbox)
            writeRaw(" ")
            writeNString(address.host)
            writeRaw(")")
        }
        writeRaw(")")
    }

    /// `body = "(" (body-type-1part / body-type-mpart) ")"`
    mutating func write(_ body: IMAPBodyStructure, extensions: Bool) {
        writeRaw("(")
        switch body {
        case .singlePart(let part):
            write(part, extensions: extensions)
        case .multipart(let multipart):
            // `body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]`
            for part in multipart.parts { write(part, extensions: extensions) }
            writeRaw(" ")
            writeString(multipart.subtype)
            if extensions, let data = multipart.extensionData {
                // `body-ext-mpart = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]`
                writeRaw(" ")
                writeBodyParameters(data.parameters)
                writeRaw(" ")
                writeDisposition(data.disposition)
                writeRaw(" ")
                writeLanguage(data.language)
                writeRaw(" ")
                writeNString(data.location)
            }
        }
        writeRaw(")")
    }

    /// `body-type-basic = media-basic SP body-fields`
    /// `body-type-msg = media-message SP body-fields SP envelope SP body SP body-fld-lines`
    /// `body-type-text = media-text SP body-fields SP body-fld-lines`
    mutating func write(_ part: IMAPBodyPart, extensions: Bool) {
        writeString(part.type)
        writeRaw(" ")
        writeString(part.subtype)
        writeRaw(" ")
        // `body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP body-fld-octets`
        writeBodyParameters(part.fields.parameters)
        writeRaw(" ")
        writeNString(part.fields.id)
        writeRaw(" ")
        writeNString(part.fields.description)
        writeRaw(" ")
        writeString(part.fields.encoding)
        writeRaw(" \(part.fields.octets)")
        switch part.kind {
        case .basic:
            break
        case .text(let lines):
            writeRaw(" \(lines)")
        case .message(let envelope, let body, let lines):
            writeRaw(" ")
            write(envelope)
            writeRaw(" ")
            write(body, extensions: extensions)
            writeRaw(" \(lines)")
        }
        if extensions, let data = part.extensionData {
            // `body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc]]]`
            writeRaw(" ")
            writeNString(data.md5)
            writeRaw(" ")
            writeDisposition(data.disposition)
            writeRaw(" ")
            writeLanguage(data.language)
            writeRaw(" ")
            writeNString(data.location)
        }
    }

    /// `body-fld-param = "(" string SP string *(SP string SP string) ")" / nil`
    mutating func writeBodyParameters(_ parameters: [IMAPBodyParameter]) {
        guard !parameters.isEmpty else {
            writeRaw("NIL")
            return
        }
        writeList(parameters) { encoder, parameter in
            encoder.writeString(parameter.name)
            encoder.writeRaw(" ")
            encoder.writeString(parameter.value)
        }
    }

    /// `body-fld-dsp = "(" string SP body-fld-param ")" / nil`
    mutating func writeDisposition(_ disposition: IMAPBodyDisposition?) {
        guard let disposition else {
            writeRaw("NIL")
            return
        }
        writeRaw("(")
        writeString(disposition.type)
        writeRaw(" ")
        writeBodyParameters(disposition.parameters)
        writeRaw(")")
    }

    /// `body-fld-lang = nstring / "(" string *(SP string) ")"`
    mutating func writeLanguage(_ languages: [String]) {
        switch languages.count {
        case 0: writeRaw("NIL")
        case 1: writeString(languages[0])
        default: writeList(languages) { $0.writeString($1) }
        }
    }

    // MARK: - Primitives

    /// Server-chosen ASCII (keywords, capabilities, numbers) as it is.
    mutating func writeRaw(_ text: String) {
        bytes.append(contentsOf: text.utf8)
    }

    /// `"(" element *(SP element) ")"`
    mutating func writeList<T>(_ elements: [T], _ writeElement: (inout IMAPResponseEncoder, T) -> Void) {
        writeRaw("(")
        for (index, element) in elements.enumerated() {
            if index > 0 { writeRaw(" ") }
            writeElement(&self, element)
        }
        writeRaw(")")
    }

    /// `flag-list = "(" [flag *(SP flag)] ")"`
    mutating func writeFlagList(_ flags: [IMAPFlag]) {
        writeList(flags) { $0.writeRaw($1.name) }
    }

    /// `sequence-set`, `$` for the saved result.
    mutating func write(_ set: IMAPSequenceSet) {
        switch set {
        case .lastSearchResult:
            writeRaw("$")
        case .ranges(let ranges):
            for (index, range) in ranges.enumerated() {
                if index > 0 { writeRaw(",") }
                write(range.first)
                if range.first != range.last {
                    writeRaw(":")
                    write(range.last)
                }
            }
        }
    }

    mutating func write(_ number: IMAPSequenceNumber) {
        switch number {
        case .number(let n): writeRaw(String(n))
        case .last: writeRaw("*")
        }
    }

    /// `mailbox`, encoded in modified UTF-7.
    mutating func writeMailbox(_ mailbox: IMAPMailboxName) {
        writeAString(ModifiedUTF7.encode(mailbox.name))
    }

    /// `astring = 1*ASTRING-CHAR / string`: an atom when it can be (and is not "NIL",
    /// which a client could read as nil).
    mutating func writeAString(_ value: String) {
        let utf8 = Array(value.utf8)
        if !utf8.isEmpty, utf8.allSatisfy(IMAPGrammar.isAStringChar), value.uppercased() != "NIL" {
            bytes.append(contentsOf: utf8)
        } else {
            writeString(utf8)
        }
    }

    /// `nstring = string / nil`
    mutating func writeNString(_ value: String?) {
        guard let value else {
            writeRaw("NIL")
            return
        }
        writeString(value)
    }

    mutating func writeString(_ value: String) {
        writeString(Array(value.utf8))
    }

    /// `string = quoted / literal`: quoted when short and 7-bit without CR, LF or NUL,
    /// a literal otherwise (8-bit is never quoted: RFC 3501 `QUOTED-CHAR` is 7-bit).
    mutating func writeString(_ value: [UInt8]) {
        if value.count <= IMAPLimits.maxQuotedResponseLength, value.allSatisfy(IMAPGrammar.isTextChar) {
            writeQuoted(value)
        } else {
            writeLiteral(value)
        }
    }

    /// `quoted = DQUOTE *QUOTED-CHAR DQUOTE`, escaping `"` and `\`.
    mutating func writeQuoted(_ value: [UInt8]) {
        bytes.append(ASCII.quote)
        for byte in value {
            if byte == ASCII.quote || byte == ASCII.backslash { bytes.append(ASCII.backslash) }
            bytes.append(byte)
        }
        bytes.append(ASCII.quote)
    }

    /// `literal = "{" number "}" CRLF *CHAR8`
    mutating func writeLiteral(_ value: [UInt8]) {
        writeRaw("{\(value.count)}\r\n")
        bytes.append(contentsOf: value)
    }

    /// Message data: a literal, or NIL.
    mutating func writeNLiteral(_ value: [UInt8]?) {
        guard let value else {
            writeRaw("NIL")
            return
        }
        writeLiteral(value)
    }
}
