import BerthCore
import BerthIMAP

/// Flags between the wire (RFC 3501 §2.3.2) and the store's `MessageFlags`.
enum IMAPFlags {
    /// The system flags a client may set, and `$Forwarded` (RFC 5788), which the store
    /// keeps as Maildir's `P`.
    static let system: [(IMAPFlag, MessageFlags.System)] = [
        (.answered, .answered), (.flagged, .flagged), (.deleted, .deleted), (.seen, .seen), (.draft, .draft),
        (IMAPFlag("$Forwarded"), .forwarded),
    ]

    /// `* FLAGS` of SELECT: the system flags (keywords are announced as they appear).
    static let selectFlags: [IMAPFlag] = system.map(\.0)

    static func imapFlags(_ flags: MessageFlags) -> [IMAPFlag] {
        var result: [IMAPFlag] = []
        for (flag, bit) in system where flags.system.contains(bit) { result.append(flag) }
        result += flags.keywords.map(IMAPFlag.init)
        return result
    }

    /// nil when a system flag is unknown (RFC 3501 §2.3.2: clients cannot invent `\`
    /// flags). `\Recent` cannot be stored and is dropped.
    static func messageFlags(_ flags: [IMAPFlag]) -> MessageFlags? {
        var system: MessageFlags.System = []
        var keywords: [String] = []
        outer: for flag in flags {
            for (known, bit) in Self.system where known.name.lowercased() == flag.name.lowercased() {
                system.insert(bit)
                continue outer
            }
            if flag.name.lowercased() == "\\recent" { continue }
            if flag.isSystemFlag { return nil }
            if !keywords.contains(where: { $0.lowercased() == flag.name.lowercased() }) { keywords.append(flag.name) }
        }
        return MessageFlags(system: system, keywords: keywords)
    }

    static func has(_ flags: MessageFlags, keyword: IMAPFlag) -> Bool {
        if let (_, bit) = system.first(where: { $0.0.name.lowercased() == keyword.name.lowercased() }) {
            return flags.system.contains(bit)
        }
        return flags.keywords.contains { $0.lowercased() == keyword.name.lowercased() }
    }
}

/// Calendar arithmetic in UTC for INTERNALDATE (RFC 3501 §2.3.3) and SEARCH dates.
enum IMAPDates {
    /// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
    static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func dayNumber(_ date: IMAPDate) -> Int { days(year: date.year, month: date.month, day: date.day) }

    /// The UTC day of a time in seconds since 1970.
    static func dayNumber(seconds: Double) -> Int { Int((seconds / 86_400).rounded(.down)) }

    static func dateTime(seconds: Double) -> IMAPDateTime {
        let whole = Int(seconds.rounded(.down))
        let day = Int((Double(whole) / 86_400).rounded(.down))
        let rest = whole - day * 86_400
        let (y, m, d) = civil(days: day)
        let date = IMAPDate(year: min(max(y, 1), 9999), month: m, day: d) ?? IMAPDate(year: 1970, month: 1, day: 1)!
        return IMAPDateTime(date: date, hour: rest / 3600, minute: rest % 3600 / 60, second: rest % 60, zoneMinutes: 0)!
    }

    static func seconds(_ dateTime: IMAPDateTime) -> Double {
        let day = dayNumber(dateTime.date)
        let local = day * 86_400 + dateTime.hour * 3600 + dateTime.minute * 60 + dateTime.second
        return Double(local - dateTime.zoneMinutes * 60)
    }

    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    /// The calendar day of an RFC 5322 `Date:` field (`[day ","] d month yyyy ...`), for
    /// SENTBEFORE/SENTON/SENTSINCE, which ignore the time and zone (RFC 3501 §6.4.4).
    static func dayNumber(rfc5322 value: String) -> Int? {
        var words = value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," }).map(String.init)
        if let first = words.first, first.first?.isLetter == true { words.removeFirst() }
        guard words.count >= 3, let day = Int(words[0]),
              let month = months.firstIndex(of: words[1].prefix(3).lowercased()), var year = Int(words[2])
        else { return nil }
        if words[2].count == 2 { year += year < 50 ? 2000 : 1900 } else if words[2].count == 3 { year += 1900 }
        guard let date = IMAPDate(year: year, month: month + 1, day: day) else { return nil }
        return dayNumber(date)
    }
}
