import Testing

@testable import BerthCore

#if canImport(Glibc)
import Glibc
#endif

struct UTCTimeTests {
    /// Seconds since the epoch: the epoch, a leap day, the last second of a year, 2038's
    /// 32-bit rollover, and a four-digit-year edge.
    static let moments: [time_t] = [0, 951_782_400, 1_704_067_199, 1_709_164_800, 2_147_483_648, 253_402_300_799]

    @Test(arguments: moments)
    func rfc5322MatchesStrftime(_ seconds: time_t) {
        #expect(UTCTime.rfc5322(seconds) == Self.strftime(seconds, "%a, %d %b %Y %H:%M:%S +0000"))
    }

    @Test(arguments: moments)
    func rfc3339MatchesStrftime(_ seconds: time_t) {
        var out: [UInt8] = []
        UTCTime.appendRFC3339(timespec(tv_sec: seconds, tv_nsec: 7_000_000), to: &out)
        #expect(String(decoding: out, as: UTF8.self) == Self.strftime(seconds, "%Y-%m-%dT%H:%M:%S") + ".007Z")
    }

    @Test func millisecondsAreTruncatedNotRounded() {
        var out: [UInt8] = []
        UTCTime.appendRFC3339(timespec(tv_sec: 0, tv_nsec: 999_999_999), to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "1970-01-01T00:00:00.999Z")
    }

    private static func strftime(_ seconds: time_t, _ format: String) -> String {
        var seconds = seconds
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let count = Glibc.strftime(&buffer, buffer.count, format, &parts)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
