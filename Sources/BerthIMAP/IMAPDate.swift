/// `date-text = date-day "-" date-month "-" date-year` (RFC 3501 §9): a calendar day,
/// as SEARCH BEFORE/ON/SINCE use it.
public struct IMAPDate: Sendable, Hashable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int

    /// Nil unless the day exists (29 February only in leap years).
    public init?(year: Int, month: Int, day: Int) {
        guard (1...9999).contains(year), (1...12).contains(month), day >= 1,
              day <= Self.daysIn(month: month, year: year)
        else { return nil }
        self.year = year
        self.month = month
        self.day = day
    }

    static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// `1-Feb-2024`
    public var description: String { "\(day)-\(Self.monthNames[month - 1])-\(paddedYear)" }

    var paddedYear: String {
        String(repeating: "0", count: max(0, 4 - String(year).count)) + String(year)
    }
}

/// `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE`
/// (RFC 3501 §9): APPEND's and INTERNALDATE's instant with its zone.
public struct IMAPDateTime: Sendable, Hashable, CustomStringConvertible {
    public let date: IMAPDate
    public let hour: Int
    public let minute: Int
    public let second: Int
    /// Offset from UTC in minutes, `-0700` is -420.
    public let zoneMinutes: Int

    public init?(date: IMAPDate, hour: Int, minute: Int, second: Int, zoneMinutes: Int) {
        // A leap second (60) is allowed, as in RFC 5322 §3.3.
        guard (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second),
              (-(99 * 60 + 59)...(99 * 60 + 59)).contains(zoneMinutes)
        else { return nil }
        self.date = date
        self.hour = hour
        self.minute = minute
        self.second = second
        self.zoneMinutes = zoneMinutes
    }

    /// `17-Jul-1996 02:44:25 -0700`, the day padded with a space (`date-day-fixed`),
    /// without the quotes.
    public var description: String {
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let day = date.day < 10 ? " \(date.day)" : "\(date.day)"
        let zone = abs(zoneMinutes)
        return "\(day)-\(IMAPDate.monthNames[date.month - 1])-\(date.paddedYear) \(two(hour)):\(two(minute)):\(two(second)) "
            + "\(zoneMinutes < 0 ? "-" : "+")\(two(zone / 60))\(two(zone % 60))"
    }
}
