import { allows, type Grant } from "./app.ts";
import type { WebhookEmitter } from "./events.ts";
import { revParse } from "./git.ts";
import { GraphqlFieldError, type Resolver } from "./graphql.ts";
import { isoNow } from "./http.ts";
import { decodeNodeId, type Item, nodeId, type Repo, type Store } from "./store.ts";

/** GraphQL roots (query, mutation) over the same store, enforcing the token's scope and permissions. */
export function graphqlRoots(
  store: Store,
  grant: Grant,
  hooks: WebhookEmitter,
  actor: string,
): { query: Resolver; mutation: Resolver } {
  const visible = (repo: Repo | undefined): repo is Repo => !!repo && (!grant.repoIds || grant.repoIds.has(repo.id));
  const need = (area: string, level: "read" | "write") => {
    if (!allows(grant, area, level)) throw new GraphqlFieldError("FORBIDDEN", "Resource not accessible by integration");
  };

  const prNode = (repo: Repo, it: Item): Resolver => ({
    __typename: "PullRequest",
    id: nodeId("PR", repo.id, it.number),
    number: it.number,
    title: it.title,
    body: it.body ?? "",
    url: `${store.serverUrl}/${repo.fullName}/pull/${it.number}`,
    isDraft: it.pull!.draft,
    state: it.state === "open" ? "OPEN" : "CLOSED",
    closed: it.state === "closed",
    merged: false,
    headRefName: it.pull!.head,
    baseRefName: it.pull!.base,
    headRefOid: async () => (await revParse(repo.bare, `refs/heads/${it.pull!.head}`)) ?? it.pull!.headSha,
    createdAt: it.createdAt,
    updatedAt: it.updatedAt,
    author: { __typename: "Bot", login: it.user.replace(/\[bot\]$/, "") },
    repository: () => repoNode(repo),
  });

  const repoNode = (repo: Repo): Resolver => ({
    __typename: "Repository",
    id: nodeId("R", repo.id),
    databaseId: repo.id,
    name: repo.name,
    nameWithOwner: repo.fullName,
    url: `${store.serverUrl}/${repo.fullName}`,
    owner: { __typename: "Organization", login: repo.owner },
    pullRequest: ({ number }: { number?: unknown }) => {
      need("pull_requests", "read");
      const it = repo.items.get(Number(number));
      if (!it?.pull) {
        throw new GraphqlFieldError("NOT_FOUND", `Could not resolve to a PullRequest with the number of ${number}.`);
      }
      return prNode(repo, it);
    },
  });

  const pullById = (id: unknown): { repo: Repo; it: Item } => {
    const decoded = typeof id === "string" ? decodeNodeId(id) : undefined;
    const repo = decoded?.prefix === "PR" ? store.repoById(Number(decoded.parts[0])) : undefined;
    const it = repo?.items.get(Number(decoded?.parts[1]));
    if (!visible(repo) || !it?.pull) {
      throw new GraphqlFieldError("NOT_FOUND", `Could not resolve to a node with the global id of '${String(id)}'`);
    }
    return { repo, it };
  };

  const setDraft =
    (draft: boolean) =>
    ({ input }: { input?: { pullRequestId?: unknown; clientMutationId?: unknown } }) => {
      need("pull_requests", "write");
      const { repo, it } = pullById(input?.pullRequestId);
      if (it.state !== "open") throw new GraphqlFieldError("UNPROCESSABLE", "Pull request is closed");
      const changed = it.pull!.draft !== draft;
      it.pull!.draft = draft;
      it.updatedAt = isoNow();
      if (changed) hooks.pull(repo, actor, it, draft ? "converted_to_draft" : "ready_for_review");
      return { clientMutationId: input?.clientMutationId ?? null, pullRequest: prNode(repo, it) };
    };

  return {
    query: {
      repository: ({ owner, name }: { owner?: unknown; name?: unknown }) => {
        const repo = store.repo(`${String(owner)}/${String(name)}`);
        if (!visible(repo)) {
          throw new GraphqlFieldError(
            "NOT_FOUND",
            `Could not resolve to a Repository with the name '${owner}/${name}'.`,
          );
        }
        return repoNode(repo);
      },
      node: ({ id }: { id?: unknown }) => {
        need("pull_requests", "read");
        const { repo, it } = pullById(id);
        return prNode(repo, it);
      },
    },
    mutation: {
      markPullRequestReadyForReview: setDraft(false),
      convertPullRequestToDraft: setDraft(true),
    },
  };
}
