import Foundation
import Testing
@testable import BerthCore

@Suite("FileDescriptorIO")
struct FileDescriptorIOTests {
    @Test("writes everything at the position or at an offset; a bad descriptor gives its errno")
    func writeAll() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("berth-fdio-\(UUID().uuidString)").path
        defer { unlink(path) }
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
        try #require(fd >= 0)
        let big = [UInt8](repeating: 0x61, count: 3 * 1024 * 1024)
        #expect(FileDescriptorIO.writeAll(fd, big) == nil)
        #expect(FileDescriptorIO.writeAll(fd, Array("xyz".utf8), at: 1) == nil)
        #expect(FileDescriptorIO.writeAll(fd, [UInt8]()) == nil)
        close(fd)
        let written = try #require(FileManager.default.contents(atPath: path))
        #expect(written.count == big.count)
        #expect(Array(written.prefix(5)) == Array("axyza".utf8))
        #expect(FileDescriptorIO.writeAll(fd, [1, 2, 3]) == EBADF, "closed: the errno comes back")
    }
}
