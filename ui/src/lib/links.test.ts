import { describe, expect, it } from "vitest";
import { isWebAddress, linkName } from "./links";

describe("links", () => {
  it("opens only web addresses", () => {
    expect(isWebAddress("https://example.org/a.json")).toBe(true);
    expect(isWebAddress("http://127.0.0.1:8000/x")).toBe(true);
    expect(isWebAddress("file:///home/me/.ssh/id_rsa")).toBe(false);
    expect(isWebAddress("javascript:alert(1)")).toBe(false);
    expect(isWebAddress("../LICENSE.txt")).toBe(false);
    expect(isWebAddress("s3://bucket/key")).toBe(false);
  });

  it("names a link by its title, else by what its relation means", () => {
    expect(linkName({ rel: "license", href: "x", title: "CC-BY-4.0" })).toBe("CC-BY-4.0");
    expect(linkName({ rel: "license", href: "x", title: "  " })).toBe("The license");
    expect(linkName({ rel: "via", href: "x", title: null })).toBe("Where it came from");
    expect(linkName({ rel: "something-else", href: "x", title: null })).toBe("something-else");
  });
});
