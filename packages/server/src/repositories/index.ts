import type { Knex } from 'knex';
import { isLockConflict } from '../db/knex.ts';
import { AlertsRepository } from './alerts.ts';
import { AppPasswordsRepository } from './app-passwords.ts';
import { ArchivesRepository } from './archives.ts';
import { BackupsRepository } from './backups.ts';
import { ChallengesRepository } from './challenges.ts';
import { ContentBlocksRepository } from './content-blocks.ts';
import { ContentsRepository } from './contents.ts';
import { DavLocksRepository } from './dav-locks.ts';
import { DavPropertiesRepository } from './dav-properties.ts';
import { FileVersionsRepository } from './file-versions.ts';
import { FilesRepository } from './files.ts';
import { GroupsRepository } from './groups.ts';
import { HistoryRepository } from './history.ts';
import { IdentitiesRepository } from './identities.ts';
import { InvitesRepository } from './invites.ts';
import { JobLeasesRepository } from './jobs.ts';
import { LoginFlowsRepository } from './login-flows.ts';
import { MembersRepository } from './members.ts';
import { NcUploadsRepository } from './nc-uploads.ts';
import { NodesRepository } from './nodes.ts';
import { PasskeysRepository } from './passkeys.ts';
import { SessionsRepository } from './sessions.ts';
import { SharesRepository } from './shares.ts';
import { StatsRepository } from './stats.ts';
import { TotpRepository } from './totp.ts';
import { TusUploadsRepository } from './tus-uploads.ts';
import { UploadsRepository } from './uploads.ts';
import { UserJobsRepository } from './user-jobs.ts';
import { UsersRepository } from './users.ts';

/** Every repository over one connection or transaction; the only code that speaks SQL. */
export class Repositories {
  readonly users: UsersRepository;
  readonly sessions: SessionsRepository;
  readonly nodes: NodesRepository;
  readonly contents: ContentsRepository;
  readonly contentBlocks: ContentBlocksRepository;
  readonly files: FilesRepository;
  readonly uploads: UploadsRepository;
  readonly challenges: ChallengesRepository;
  readonly shares: SharesRepository;
  readonly jobs: JobLeasesRepository;
  readonly invites: InvitesRepository;
  readonly archives: ArchivesRepository;
  readonly appPasswords: AppPasswordsRepository;
  readonly tusUploads: TusUploadsRepository;
  readonly davProperties: DavPropertiesRepository;
  readonly davLocks: DavLocksRepository;
  readonly loginFlows: LoginFlowsRepository;
  readonly ncUploads: NcUploadsRepository;
  readonly fileVersions: FileVersionsRepository;
  readonly history: HistoryRepository;
  readonly userJobs: UserJobsRepository;
  readonly alerts: AlertsRepository;
  readonly totp: TotpRepository;
  readonly groups: GroupsRepository;
  readonly members: MembersRepository;
  readonly identities: IdentitiesRepository;
  readonly passkeys: PasskeysRepository;
  readonly stats: StatsRepository;
  readonly backups: BackupsRepository;

  constructor(private readonly db: Knex) {
    this.users = new UsersRepository(db);
    this.sessions = new SessionsRepository(db);
    this.nodes = new NodesRepository(db);
    this.contents = new ContentsRepository(db);
    this.contentBlocks = new ContentBlocksRepository(db);
    this.files = new FilesRepository(db);
    this.uploads = new UploadsRepository(db);
    this.challenges = new ChallengesRepository(db);
    this.shares = new SharesRepository(db);
    this.jobs = new JobLeasesRepository(db);
    this.invites = new InvitesRepository(db);
    this.archives = new ArchivesRepository(db);
    this.appPasswords = new AppPasswordsRepository(db);
    this.tusUploads = new TusUploadsRepository(db);
    this.davProperties = new DavPropertiesRepository(db);
    this.davLocks = new DavLocksRepository(db);
    this.loginFlows = new LoginFlowsRepository(db);
    this.ncUploads = new NcUploadsRepository(db);
    this.fileVersions = new FileVersionsRepository(db);
    this.history = new HistoryRepository(db);
    this.userJobs = new UserJobsRepository(db);
    this.alerts = new AlertsRepository(db);
    this.totp = new TotpRepository(db);
    this.groups = new GroupsRepository(db);
    this.members = new MembersRepository(db);
    this.identities = new IdentitiesRepository(db);
    this.passkeys = new PasskeysRepository(db);
    this.stats = new StatsRepository(db);
    this.backups = new BackupsRepository(db);
  }

  /**
   * Runs `work` in one transaction with repositories bound to it. A transaction the database
   * chose as a deadlock victim (or that timed out on a lock) was rolled back whole, so it is
   * run again, a few times, before the error reaches the caller.
   */
  async transaction<T>(work: (tx: Repositories) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction((trx) => work(new Repositories(trx)));
      } catch (error) {
        if (attempt >= 4 || !isLockConflict(error)) throw error;
        await new Promise((resolve) => setTimeout(resolve, 10 * attempt + Math.random() * 20));
      }
    }
  }

  /** A cheap round trip, for readiness. */
  async ping(): Promise<void> {
    await this.db.raw('select 1');
  }
}
