import BerthCore
import NIOCore
import NIOPosix

/// The addresses on the host's interfaces (getifaddrs through NIO), link-local left out.
public enum InterfaceDiscovery {
    public static func discover() -> [DiscoveredAddress] {
        guard let devices = try? System.enumerateDevices() else { return [] }
        var found: [DiscoveredAddress] = []
        for device in devices {
            guard let address = device.address, let ip = address.ipAddress,
                  let canonical = IPLiteral.canonical(ip), !IPLiteral.isLinkLocal(canonical.address)
            else { continue }
            found.append(DiscoveredAddress(address: canonical.address, family: canonical.family, interface: device.name))
        }
        return found
    }
}
