@testable import BerthDNS

/// Builds DNS messages byte by byte, so fixtures can hold what no encoder would write.
struct WireBuilder {
    var bytes: [UInt8] = []

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { bytes += [UInt8(value >> 8), UInt8(value & 0xFF)] }
    mutating func u32(_ value: UInt32) { u16(UInt16(value >> 16)); u16(UInt16(value & 0xFFFF)) }

    /// Flags word: QR, TC, RD, RA and RCODE as given.
    mutating func header(id: UInt16, response: Bool = true, truncated: Bool = false, rcode: UInt8 = 0,
                         qd: UInt16 = 1, an: UInt16 = 0, ns: UInt16 = 0, ar: UInt16 = 0) {
        var flags: UInt16 = 0x0100 | UInt16(rcode)
        if response { flags |= 0x8080 }
        if truncated { flags |= 0x0200 }
        u16(id); u16(flags); u16(qd); u16(an); u16(ns); u16(ar)
    }

    /// An uncompressed name; "" is the root. Returns where it starts, for pointers.
    @discardableResult
    mutating func name(_ text: String) -> Int {
        let start = bytes.count
        for label in text.split(separator: ".") {
            u8(UInt8(label.utf8.count))
            bytes += label.utf8
        }
        u8(0)
        return start
    }

    /// Labels followed by a compression pointer to `offset`.
    @discardableResult
    mutating func name(_ labels: String, pointer offset: Int) -> Int {
        let start = bytes.count
        for label in labels.split(separator: ".") {
            u8(UInt8(label.utf8.count))
            bytes += label.utf8
        }
        u16(0xC000 | UInt16(offset))
        return start
    }

    mutating func question(_ name: String, _ type: DNSRecordType) {
        self.name(name)
        u16(type.rawValue); u16(1)
    }

    /// Owner already written by the caller (a name or pointer); then TYPE CLASS TTL RDLENGTH RDATA.
    mutating func recordTail(_ type: DNSRecordType, ttl: UInt32 = 300, rdata: [UInt8], rdlength: Int? = nil) {
        u16(type.rawValue); u16(1); u32(ttl)
        u16(UInt16(rdlength ?? rdata.count))
        bytes += rdata
    }

    mutating func record(_ owner: String, _ type: DNSRecordType, ttl: UInt32 = 300, rdata: [UInt8]) {
        name(owner)
        recordTail(type, ttl: ttl, rdata: rdata)
    }

    /// SOA with the given TTL and MINIMUM, for negative answers.
    mutating func soa(_ owner: String, ttl: UInt32 = 3600, minimum: UInt32 = 30) {
        var rdata = WireBuilder()
        rdata.name("ns.\(owner)"); rdata.name("hostmaster.\(owner)")
        rdata.u32(1); rdata.u32(7200); rdata.u32(900); rdata.u32(1_209_600); rdata.u32(minimum)
        record(owner, .soa, ttl: ttl, rdata: rdata.bytes)
    }

    static func nameBytes(_ text: String) -> [UInt8] {
        var builder = WireBuilder()
        builder.name(text)
        return builder.bytes
    }

    static func mx(_ preference: UInt16, _ exchange: String) -> [UInt8] {
        [UInt8(preference >> 8), UInt8(preference & 0xFF)] + nameBytes(exchange)
    }

    static func txt(_ strings: [String]) -> [UInt8] {
        strings.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
    }
}


func hexBytes(_ text: String) -> [UInt8] {
    let digits = text.filter(\.isHexDigit)
    var bytes: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        bytes.append(UInt8(digits[index..<next], radix: 16)!)
        index = next
    }
    return bytes
}
