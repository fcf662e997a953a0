/// The version `berth --version` prints and the server logs at start.
public enum BerthVersion {
    public static let string = "0.2.0-dev"
}
