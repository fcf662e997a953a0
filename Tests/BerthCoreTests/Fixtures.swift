@testable import BerthCore

/// Small builders so that each table row reads as the bindings it describes.
enum Fixture {
    static func port(
        _ id: String, _ name: String, _ proto: MailProtocol = .smtp, _ encryption: Encryption = .none,
        number: Int, tlsRequired: Bool? = nil, certificatePath: String? = nil, privateKeyPath: String? = nil,
        description: String = ""
    ) -> Port {
        Port(
            id: id, name: name, protocol: proto, encryption: encryption, tlsRequired: tlsRequired, port: number,
            certificatePath: certificatePath, privateKeyPath: privateKeyPath, description: description)
    }

    static func ip(
        _ address: String, _ ports: [String] = [], source: AddressSource? = nil, present: Bool = true,
        hostname: String? = nil, interface: String? = nil
    ) -> IPAddressEntry {
        let family: AddressFamily = address.contains(":") ? .ipv6 : .ipv4
        let resolved = source ?? ((address == "0.0.0.0" || address == "::") ? .wildcard : .interface)
        return IPAddressEntry(
            address: address, family: family, interface: interface ?? (resolved == .interface ? "eth0" : nil),
            source: resolved, present: present, hostname: hostname, ports: ports)
    }

    /// Runs `body` and returns the `BindingsError` it threw, or nil if it did not throw one.
    static func refusal(_ body: () throws -> Void) -> BindingsError? {
        do {
            try body()
            return nil
        } catch let error as BindingsError {
            return error
        } catch {
            return nil
        }
    }
}

/// Foundation has a `Port` (NSPort) too; tests that import Foundation mean Berth's.
typealias Port = BerthCore.Port
