import BerthCore
import BerthTestSupport
import InMemoryLogging
import Logging
import NIOCore
import NIOEmbedded
import NIOSSL
import Testing

@testable import BerthNet

/// A handler's use of `SessionTimer`, on the embedded loop's fake clock.
private final class TimedSession {
    static let timeouts = SessionTimeouts(command: .seconds(300), handshake: .seconds(30))

    let loop = EmbeddedEventLoop()
    var timer = SessionTimer()
    var open = true
    /// How often the scheduled check ran.
    var checks = 0
    var expired: [SessionDeadline.Kind] = []

    func arm(_ kind: SessionDeadline.Kind) {
        timer.arm(kind, timeouts: Self.timeouts, on: loop) { self.check() }
    }

    private func check() {
        checks += 1
        if let kind = timer.checkDue(sessionOpen: open, on: loop, onCheck: { self.check() }) { expired.append(kind) }
    }
}

struct SessionTimerTests {
    @Test func theArmedKindExpiresAtItsTimeout() {
        for (kind, seconds) in [(SessionDeadline.Kind.handshake, Int64(30)), (.command, 300), (.data, 600)] {
            let session = TimedSession()
            session.arm(kind)
            #expect(session.timer.kind == kind)
            session.loop.advanceTime(by: .seconds(seconds) - .nanoseconds(1))
            #expect(session.expired.isEmpty, "\(kind): not yet")
            session.loop.advanceTime(by: .nanoseconds(1))
            #expect(session.expired == [kind])
            #expect(session.checks == 1)
        }
    }

    @Test func aLaterDeadlineKeepsTheScheduledCheckWhichRunsAgainAtTheNewTime() {
        let session = TimedSession()
        session.arm(.handshake)  // due at 30 s
        session.loop.advanceTime(by: .seconds(10))
        session.arm(.command)  // moved to 310 s: no second task
        session.loop.advanceTime(by: .seconds(20))
        #expect(session.checks == 1, "the check ran at the old time")
        #expect(session.expired.isEmpty, "and found the deadline moved")
        session.loop.advanceTime(by: .seconds(280) - .nanoseconds(1))
        #expect(session.expired.isEmpty)
        session.loop.advanceTime(by: .nanoseconds(1))
        #expect(session.expired == [.command])
        #expect(session.checks == 2)
    }

    @Test func anEarlierDeadlineReplacesTheScheduledCheck() {
        let session = TimedSession()
        session.arm(.command)  // due at 300 s
        session.arm(.handshake)  // due at 30 s
        session.loop.advanceTime(by: .seconds(30))
        #expect(session.expired == [.handshake])
        session.loop.advanceTime(by: .seconds(600))
        #expect(session.checks == 1, "the 300 s check was cancelled")
    }

    @Test func disarmedNothingExpiresAndNothingIsScheduledAgain() {
        let session = TimedSession()
        session.arm(.command)
        session.timer.disarm()
        #expect(session.timer.kind == nil)
        session.loop.advanceTime(by: .seconds(3600))
        #expect(session.expired.isEmpty)
        #expect(session.checks == 1)
        session.arm(.handshake)
        session.loop.advanceTime(by: .seconds(30))
        #expect(session.expired == [.handshake], "armed again after a disarm, a new check runs")
    }

    @Test func aClosedSessionExpiresNothing() {
        let session = TimedSession()
        session.arm(.command)
        session.open = false
        session.loop.advanceTime(by: .seconds(3600))
        #expect(session.expired.isEmpty)
        #expect(session.checks == 1)
    }

    @Test func cancelledTheCheckNeverRuns() {
        let session = TimedSession()
        session.arm(.handshake)
        session.timer.cancel()
        session.loop.advanceTime(by: .seconds(3600))
        #expect(session.checks == 0)
    }
}

struct SessionTLSTests {
    private static func log() -> (SessionLog, InMemoryLogHandler) {
        var recorder = InMemoryLogHandler()
        recorder.logLevel = .trace
        let base = Logger(label: "test") { _ in recorder }
        return (SessionLog(base: base, id: "S1", client: "192.0.2.1", listener: "127.0.0.1:25", protocol: "smtp"), recorder)
    }

    @Test(arguments: [true, false])
    func startLogsConnectAndWhetherTheGreetingWaitsForAHandshake(implicitTLS: Bool) {
        let (log, recorder) = Self.log()
        var tls = SessionTLS()
        #expect(tls.start(implicitTLS: implicitTLS, log: log) == implicitTLS)
        #expect(tls.isHandshakePending == implicitTLS)
        #expect(recorder.entries.map(\.message.description) == ["connect"])
        #expect(recorder.entries.first?.metadata["tls"] == .string(implicitTLS ? "implicit" : "none"))
    }

    @Test func theImplicitHandshakeIsToldApartFromAnUpgrade() throws {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        let (initial, recorder) = Self.log()
        var log = initial
        var tls = SessionTLS()
        _ = tls.start(implicitTLS: true, log: log)
        #expect(tls.handshakeCompleted(channel.pipeline, log: &log) == .implicit)
        #expect(!tls.isHandshakePending)

        var plain = SessionTLS()
        _ = plain.start(implicitTLS: false, log: log)
        #expect(plain.handshakeCompleted(channel.pipeline, log: &log) == .upgrade, "after STARTTLS")

        let established = recorder.entries.filter { $0.message.description == "tls established" }
        #expect(established.count == 2)
        // No TLS handler in this pipeline: the version is not known, only that TLS is on.
        #expect(established.last?.metadata["tls"] == .string("yes"))
        #expect(log.logger[metadataKey: "tls"] == .string("yes"), "on every later line")
    }

    /// Input a protocol framed but had not run when STARTTLS was accepted.
    private struct Pipelined: BufferedInput {
        var bytes: Int

        mutating func discardBuffered() -> Int {
            defer { bytes = 0 }
            return bytes
        }
    }

    @Test func anUpgradeDropsWhatWasPipelinedAndLogsHowMuch() throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let path = directory.file("mx.pem")
        try CertificateLoader.generateSelfSigned(hostname: "mx.example.com", at: path)
        let tlsContext = try CertificateLoader.load(CertificateSource(certificatePath: path)).context

        for pipelined in [0, 12] {
            let channel = EmbeddedChannel()
            defer { _ = try? channel.finish() }
            let (log, recorder) = Self.log()
            var input = Pipelined(bytes: pipelined)
            try SessionTLS.upgrade(channel, context: tlsContext, discarding: &input, command: "stls", log: log)
            #expect(input.bytes == 0)
            _ = try channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)  // throws if absent
            if pipelined == 0 {
                #expect(recorder.entries.isEmpty, "nothing was discarded")
            } else {
                #expect(recorder.entries.map(\.message.description) == ["stls discarded pipelined input"])
                #expect(recorder.entries.first?.metadata["bytes"]?.description == "12")
            }
        }
    }

    @Test func theLogOfAConnectionNamesItsSessionClientListenerAndProtocol() {
        let spec = ListenerSpec(
            address: "127.0.0.2", family: .ipv4, source: .manual, port: 110, portID: "1", portName: "pop",
            protocol: .pop, encryption: .none, tlsRequired: false, certificate: nil, hostname: "mx.example.com")
        let connection = ConnectionContext(
            spec: spec, isImplicitTLS: false, tlsContext: nil, clientAddress: "192.0.2.9", sessionID: "S9")
        let log = SessionLog(base: Logger(label: "test"), connection: connection)
        #expect(log.id == "S9")
        #expect(log.logger[metadataKey: "session"] == "S9")
        #expect(log.logger[metadataKey: "client"] == "192.0.2.9")
        #expect(log.logger[metadataKey: "listener"] == .string(spec.key.description))
        #expect(log.logger[metadataKey: "proto"] == "pop")
    }

    @Test func onlyTLSErrorsAreTLSFailuresAndAnUncleanShutdownIsNotLogged() {
        let (log, recorder) = Self.log()
        #expect(SessionTLS.logFailure(NIOSSLError.uncleanShutdown, log: log))
        #expect(recorder.entries.isEmpty, "most clients close without close_notify")
        #expect(SessionTLS.logFailure(NIOSSLError.handshakeFailed(.sslError([])), log: log))
        #expect(recorder.entries.map(\.message.description) == ["tls failed"])
        #expect(recorder.entries.last?.level == .notice)
        #expect(!SessionTLS.logFailure(ChannelError.eof, log: log))
        #expect(recorder.entries.count == 1, "other errors are the handler's to log")
    }
}
