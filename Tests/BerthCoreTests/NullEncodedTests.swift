import BerthCore
import Foundation
import Testing

struct NullEncodedTests {
    @Test("nullable fields are written as null and read back from a missing key")
    func nullsAreExplicit() throws {
        let entry = IPAddressEntry(address: "0.0.0.0", family: .ipv4, source: .wildcard, present: true)
        let object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(entry)) as? [String: Any]
        #expect(object?["interface"] is NSNull)
        #expect(object?["hostname"] is NSNull)
        let decoded = try JSONDecoder().decode(
            IPAddressEntry.self,
            from: Data(#"{"address":"::1","family":"ipv6","source":"interface","present":true,"description":"","ports":[]}"#.utf8))
        #expect(decoded.interface == nil && decoded.hostname == nil)
        let named = try JSONDecoder().decode(
            IPAddressEntry.self,
            from: Data(#"{"address":"::1","family":"ipv6","interface":"lo","hostname":"mx.example","source":"interface","present":true,"description":"","ports":[]}"#.utf8))
        #expect(named.interface == "lo" && named.hostname == "mx.example")
    }
}
