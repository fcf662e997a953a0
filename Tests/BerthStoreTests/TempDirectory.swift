import Foundation

/// A fresh directory under the system temporary directory, removed by `remove()`.
struct TempDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("berth-store-tests-\(UUID().uuidString)", isDirectory: true).path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    var databasePath: String { path + "/berth.sqlite" }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    func files(in subdirectory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path + "/" + subdirectory)) ?? []).sorted()
    }
}
