import { describe, expect, it } from "vitest";
import { bucketKind, bucketOf, emptyLogin, hasLogin } from "./bucket";

describe("bucket destinations", () => {
  it("names the service of a bucket address, and none for a folder", () => {
    expect(bucketKind("s3://archive/mirror")).toBe("s3");
    expect(bucketKind(" AZ://container")).toBe("az");
    expect(bucketKind("gs://b")).toBe("gs");
    expect(bucketKind("/home/me/s3://x")).toBeNull();
    expect(bucketKind("https://example.com/x")).toBeNull();
    expect(bucketKind("")).toBeNull();
  });

  it("keys a login by its bucket, whatever the prefix", () => {
    expect(bucketOf("s3://archive/mirror/a")).toBe("s3://archive");
    expect(bucketOf("S3://archive")).toBe("s3://archive");
    expect(bucketOf("/home/me")).toBe("");
  });

  it("says whether anything was typed", () => {
    expect(hasLogin(emptyLogin())).toBe(false);
    expect(hasLogin({ ...emptyLogin(), region: " " })).toBe(false);
    expect(hasLogin({ ...emptyLogin(), secret: "x" })).toBe(true);
  });
});
