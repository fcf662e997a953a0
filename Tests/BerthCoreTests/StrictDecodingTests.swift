import Foundation
import Testing
@testable import BerthCore

@Suite("Strict decoding")
struct StrictDecodingTests {
    @Test("JSON scan finds duplicate keys and numbers that are not whole, with their path", arguments: [
        (#"{"name": "a", "port": 25}"#, nil, nil),
        (#"{"name": "a", "name": "b"}"#, "name", StrictJSON.Problem.duplicateKey),
        (#"{"name": "a", "n\u0061me": "b"}"#, "name", .duplicateKey),
        (#"{"outbound": {"ipv4": {"mode": "system", "mode": "address"}}}"#, "outbound.ipv4.mode", .duplicateKey),
        (#"{"a": {"x": 1}, "b": {"x": 1}}"#, nil, nil),
        (#"{"port": 25.0}"#, "port", .notWholeNumber),
        (#"{"port": 2.5e1}"#, "port", .notWholeNumber),
        (#"{"port": 25E0}"#, "port", .notWholeNumber),
        (#"{"port": -25}"#, nil, nil),
        (#"{"ports": ["1", 2, 3.5]}"#, "ports[2]", .notWholeNumber),
        (#"{"description": "1.5 and a \"quoted\" key: \"name\""}"#, nil, nil),
        (#"[{"a": 1}, {"a": 1, "a": 2}]"#, "[1].a", .duplicateKey),
        (#"{"ok": true, "no": false, "nothing": null, "x": 0}"#, nil, nil),
    ] as [(String, String?, StrictJSON.Problem?)])
    func scan(_ row: (String, String?, StrictJSON.Problem?)) {
        let found = StrictJSON.firstProblem(in: Array(row.0.utf8))
        #expect(found?.path == row.1)
        #expect(found?.problem == row.2)
    }

    @Test("port ids read from strings and whole numbers only", arguments: [
        (#"["7", 8, "abc"]"#, ["7", "8", "abc"] as [String]?),
        (#"[1.5]"#, nil),
        (#"[true]"#, nil),
        (#"[null]"#, nil),
    ])
    func portIDs(_ row: (String, [String]?)) {
        let decoded = try? JSONDecoder().decode([PortID].self, from: Data(row.0.utf8)).map(\.value)
        #expect(decoded == row.1)
    }

    @Test("unknown keys are refused with their path; known ones pass")
    func unknownKeys() throws {
        let ok = try JSONDecoder().decode(AddressPatch.self, from: Data(#"{"ports": [3, "4"], "hostname": "mx.example.com"}"#.utf8))
        #expect(ok.ports == ["3", "4"])
        for (json, path) in [
            (#"{"ports": [], "hostnam": "x"}"#, "hostnam"),
            (#"{"name": "p", "protocol": "smtp", "port": 25, "maxConnection": 5}"#, "maxConnection"),
        ] {
            let type: any Decodable.Type = path == "hostnam" ? AddressPatch.self : PortPatch.self
            do {
                _ = try JSONDecoder().decode(type, from: Data(json.utf8))
                Issue.record("\(json) was accepted")
            } catch let DecodingError.dataCorrupted(context) {
                #expect(context.debugDescription == StrictDecoding.unknownField)
                #expect(context.codingPath.map(\.stringValue) == [path])
            }
        }
        do {
            _ = try JSONDecoder().decode(Domain.self, from: Data(#"{"name": "example.com", "outbound": {"ipv4": {"mode": "system", "adresses": []}}}"#.utf8))
            Issue.record("misspelt nested key accepted")
        } catch let DecodingError.dataCorrupted(context) {
            #expect(context.codingPath.map(\.stringValue) == ["outbound", "ipv4", "adresses"])
        }
    }

    @Test("a domain without ipAddress writes it as null")
    func domainNullIPAddress() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let text = String(decoding: try encoder.encode(Domain(name: "example.com")), as: UTF8.self)
        #expect(text.contains(#""ipAddress":null"#), "\(text)")
        let back = try JSONDecoder().decode(Domain.self, from: Data(text.utf8))
        #expect(back == Domain(name: "example.com"))
    }
}
